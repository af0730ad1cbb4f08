"""AgentServices: every service of one agent, built in one place, started and closed together.

``AgentServices.open(config, camera)`` builds them in dependency order: label schema, capture store
(reconciled), shared camera, telemetry (its dataset gauges read the store), model manager (its
registry of versions in ``<data_dir>/model_registry``, scored on the store's golden set), inspector,
review queue (which feeds the challenger's shadow) and the optional live-inspection loop.
``init_app(app)`` attaches them to a Flask app (``app.extensions["rdk"]``), as the Flask tutorial's
``db.init_app`` does, and starts the background work (model watcher and cycle, live loop); ``close()``
stops everything in reverse order.
Request handlers reach them with ``rdk_agent.api.services()``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from flask import Flask

from rdk_agent.camera import open_camera
from rdk_agent.camera.base import CameraSource
from rdk_agent.camera.hub import SharedCamera
from rdk_agent.config import AgentConfig, ConfigError
from rdk_agent.inspection.anomaly_slot import AnomalySlot
from rdk_agent.inspection.inspector import Inspector
from rdk_agent.inspection.live_loop import LiveInspection
from rdk_agent.inspection.model_manager import ModelManager
from rdk_agent.inspection.review import ReviewQueue
from rdk_agent.inspection.rubric import Rubric
from rdk_agent.inspection.rules import RuleEvaluator
from rdk_agent.inspection.settings import InspectionSettings
from rdk_agent.storage import CaptureStore
from rdk_agent.storage.store import utc_iso
from rdk_agent.telemetry import Telemetry
from shared_schema import LabelSchema, default_weld_schema, load_label_schema

log = logging.getLogger(__name__)

EXTENSION_KEY = "rdk"
REGISTRY_DIRNAME = "model_registry"  # <data_dir>/model_registry: the kept model versions


def load_schema(config: AgentConfig) -> LabelSchema:
    """The station's label schema, or the default weld schema."""
    return load_label_schema(config.labels) if config.labels else default_weld_schema()


@dataclass
class AgentServices:
    """Everything a request handler needs, created once per app."""

    config: AgentConfig
    schema: LabelSchema
    store: CaptureStore
    camera: SharedCamera
    telemetry: Telemetry
    models: ModelManager
    inspector: Inspector
    review: ReviewQueue
    live_inspection: LiveInspection | None  # only when inspection.loop is on
    started_at: float = field(default_factory=time.time)
    closing: threading.Event = field(default_factory=threading.Event)  # set at shutdown: preview streams end
    stream_slots: threading.BoundedSemaphore = field(init=False)  # one per MJPEG viewer (max_streams)

    def __post_init__(self) -> None:
        self.stream_slots = threading.BoundedSemaphore(self.config.max_streams)

    @classmethod
    def open(cls, config: AgentConfig, camera: CameraSource | None = None) -> AgentServices:
        """Build every service from ``config`` (``camera`` replaces the configured one); nothing runs yet.

        ConfigError for bad inspection settings or rubric, before any file or device is opened.
        """
        try:
            settings = InspectionSettings.from_dict(config.inspection)
            rubric = Rubric.from_dict(config.rubric)
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        config.data_dir.mkdir(parents=True, exist_ok=True)
        config.models_path.mkdir(parents=True, exist_ok=True)
        schema = load_schema(config)
        source = (
            camera if camera is not None else open_camera(config.camera, config.seed, config.calibration, config.stereo)
        )
        try:
            store = CaptureStore(config.data_dir, schema, config.free_space_reserve_bytes, config.verify_on_start)
        except BaseException:
            source.close()
            raise
        shared_camera = SharedCamera(source)
        telemetry = Telemetry(dataset_counts=store.index.counts)
        registry_dir = config.data_dir / REGISTRY_DIRNAME
        models = ModelManager(config.models_path, schema, settings, telemetry, registry_dir, store)
        anomaly = AnomalySlot(config.models_path, schema, settings)  # <models-dir>/anomaly.onnx, beside the classifier
        inspector = Inspector(models, RuleEvaluator(rubric, schema), settings, telemetry, anomaly=anomaly)
        review = ReviewQueue(store, settings, telemetry, models.shadow)
        live = LiveInspection(shared_camera, inspector, review, settings.loop_interval_s) if settings.loop else None
        return cls(config, schema, store, shared_camera, telemetry, models, inspector, review, live)

    def init_app(self, app: Flask) -> None:
        """Attach to ``app`` and start the background work: load the model, watch the models dir, the live loop."""
        app.extensions[EXTENSION_KEY] = self
        self.models.start()
        if self.inspector.anomaly is not None:
            self.inspector.anomaly.start()
        if self.live_inspection is not None:
            self.live_inspection.start()

    @property
    def started_at_iso(self) -> str:
        """Start time, ISO 8601 UTC."""
        return utc_iso(self.started_at)

    def close(self) -> None:
        """End preview streams, stop the live loop, the inspector and the model watcher; close camera and store."""
        self.closing.set()
        closers = [self.models.stop, self.inspector.close]
        if self.inspector.anomaly is not None:
            closers.append(self.inspector.anomaly.stop)
        if self.live_inspection is not None:
            closers.append(self.live_inspection.stop)
        for closer in reversed(closers):
            try:
                closer()
            except Exception:
                log.exception("error while closing")
        self.camera.close()
        self.store.close()
