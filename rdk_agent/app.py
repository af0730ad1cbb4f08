"""Application factory: ``create_app(config)`` wires the agent's services into a Flask app.

Services live in ``app.extensions["rdk"]`` (an :class:`AgentServices`). Later parts plug in by
setting ``inspector`` / ``models`` / ``telemetry``, adding a status provider (its dict appears
under its name in ``GET /api/v1/status``), registering a closer, and registering a blueprint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from rdk_agent.api import register_api
from rdk_agent.auth import install as install_auth
from rdk_agent.auth import load_or_create_token
from rdk_agent.camera import open_camera
from rdk_agent.camera.base import CameraSource
from rdk_agent.camera.hub import SharedCamera
from rdk_agent.config import AgentConfig
from rdk_agent.errors import register_error_handlers
from rdk_agent.inspection.wiring import install_inspection
from rdk_agent.storage import CaptureStore
from rdk_agent.storage.store import utc_iso
from rdk_agent.web import bp as web_bp
from shared_schema import LabelSchema, default_weld_schema, load_label_schema

log = logging.getLogger(__name__)


@dataclass
class AgentServices:
    """Everything a request handler needs, created once per app."""

    config: AgentConfig
    schema: LabelSchema
    store: CaptureStore
    camera: SharedCamera
    inspector: Any = None
    models: Any = None
    telemetry: Any = None
    review: Any = None  # rdk_agent.inspection.review.ReviewQueue
    live_inspection: Any = None  # rdk_agent.inspection.live_loop.LiveInspection when inspection.loop is on
    status_providers: dict[str, Callable[[], dict]] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    closing: threading.Event = field(default_factory=threading.Event)
    stream_slots: threading.BoundedSemaphore | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.stream_slots is None:
            self.stream_slots = threading.BoundedSemaphore(self.config.max_streams)

    @property
    def started_at_iso(self) -> str:
        """Start time, ISO 8601 UTC."""
        return utc_iso(self.started_at)

    def on_close(self, closer: Callable[[], None]) -> None:
        """Run ``closer`` at shutdown (last registered, first run)."""
        self._closers.append(closer)

    def close(self) -> None:
        """Stop streams, run closers, close the camera and the store."""
        self.closing.set()
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception:
                log.exception("error while closing")
        self.camera.close()
        self.store.close()


def load_schema(config: AgentConfig) -> LabelSchema:
    """The station's label schema, or the default weld schema."""
    return load_label_schema(config.labels) if config.labels else default_weld_schema()


def _refuse_oversize_body() -> None:
    """413 for a body over max_upload_bytes on every route, also those that never read their body."""
    length = request.content_length
    if length is not None and length > current_app.config["MAX_CONTENT_LENGTH"]:
        raise RequestEntityTooLarge()


def create_app(config: AgentConfig, token: str | None = None, camera: CameraSource | None = None) -> Flask:
    """Build the agent app: storage (reconciled), camera, token policy, API blueprints."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config.models_dir.mkdir(parents=True, exist_ok=True)
    schema = load_schema(config)
    if token is None:
        token, _ = load_or_create_token(config.data_dir)
    source = camera if camera is not None else open_camera(config.camera, seed=config.seed)
    try:
        store = CaptureStore(config.data_dir, schema, config.free_space_reserve_bytes, config.verify_on_start)
    except BaseException:
        source.close()
        raise
    services = AgentServices(config=config, schema=schema, store=store, camera=SharedCamera(source))

    app = Flask("rdk_agent")
    app.url_map.merge_slashes = False  # "a//b" (e.g. an id ending in %2F) is a JSON 404, not an HTML redirect
    app.config.update(MAX_CONTENT_LENGTH=config.max_upload_bytes, JSON_SORT_KEYS=False)
    app.json.sort_keys = False
    app.extensions["rdk"] = services
    register_error_handlers(app)
    install_auth(app, token)
    app.before_request(_refuse_oversize_body)
    register_api(app)
    app.register_blueprint(web_bp)
    install_inspection(app)
    return app
