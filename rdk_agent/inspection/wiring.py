"""install_inspection(app): build the inspection services, start them, and register their endpoints."""

from __future__ import annotations

from flask import Flask

from rdk_agent.api import inspect as inspect_api
from rdk_agent.api import metrics as metrics_api
from rdk_agent.api import model as model_api
from rdk_agent.config import ConfigError
from rdk_agent.inspection.inspector import Inspector
from rdk_agent.inspection.live_loop import LiveInspection
from rdk_agent.inspection.model_manager import ModelManager
from rdk_agent.inspection.review import ReviewQueue
from rdk_agent.inspection.rubric import Rubric
from rdk_agent.inspection.rules import RuleEvaluator
from rdk_agent.inspection.settings import InspectionSettings
from rdk_agent.telemetry import Telemetry


def install_inspection(app: Flask) -> None:
    """Set ``telemetry``, ``models``, ``inspector``, ``review`` and ``live_inspection`` on the app's services."""
    svc = app.extensions["rdk"]
    config = svc.config
    try:
        settings = InspectionSettings.from_dict(config.inspection)
        rules = RuleEvaluator(Rubric.from_dict(config.rubric), svc.schema)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    telemetry = Telemetry()
    _watch_dataset(telemetry, svc.store)
    models = ModelManager(config.models_dir, svc.schema, settings, telemetry)
    inspector = Inspector(models, rules, settings, telemetry)
    svc.telemetry, svc.models, svc.inspector = telemetry, models, inspector
    svc.review = ReviewQueue(svc.store, settings, telemetry)
    svc.live_inspection = (
        LiveInspection(svc.camera, inspector, svc.review, settings.loop_interval_s) if settings.loop else None
    )

    models.start()
    svc.on_close(models.stop)
    svc.on_close(inspector.close)
    if svc.live_inspection is not None:
        svc.live_inspection.start()
        svc.on_close(svc.live_inspection.stop)
    svc.status_providers["model"] = lambda: {
        "state": models.state(),
        "sha256": models.active.classifier.sha256 if models.active is not None else None,
        "live_inspection": settings.loop,
    }
    for module in (inspect_api, model_api, metrics_api):
        app.register_blueprint(module.bp)


def _watch_dataset(telemetry: Telemetry, store) -> None:
    """Dataset gauges read from the capture index at scrape time."""

    def samples() -> dict[tuple[str, ...], float]:
        counts, _ = store.index.counts()
        return {(label if label is not None else "unlabelled",): float(n) for label, n in counts.items()}

    telemetry.dataset_samples.collect = samples
    telemetry.dataset_bytes.collect = lambda: {(): float(store.index.counts()[1])}
