"""Model endpoints: what serves and why, and rollback to the previous good model."""

from __future__ import annotations

from flask import Blueprint, jsonify

from rdk_agent.api import API_PREFIX, services
from rdk_agent.errors import ApiError
from rdk_agent.inspection.model_manager import RollbackError

bp = Blueprint("model", __name__, url_prefix=API_PREFIX)


def _status(svc) -> dict:
    status = svc.models.status()
    telemetry = svc.telemetry
    engines: dict[str, int] = {"onnx": 0, "rules": 0}
    for (engine, _label), n in telemetry.inspections.samples().items():
        engines[engine] = engines.get(engine, 0) + int(n)
    status["counters"] = {
        "engine": engines,
        "fallback_reason": {reason: int(n) for (reason,), n in sorted(telemetry.fallbacks.samples().items())},
        "reloads": int(telemetry.model_reloads.value()),
        "load_failures": {code: int(n) for (code,), n in sorted(telemetry.model_failures.samples().items())},
        "review_queued": int(telemetry.review_queued.value()),
    }
    settings = svc.inspector.settings
    status["settings"].update(
        confidence_threshold=settings.confidence_threshold,
        review_threshold=settings.review_threshold,
        timeout_ms=settings.timeout_ms,
        rules=settings.rules,
    )
    return status


@bp.get("/model")
def model_status():
    """The serving model's card, load time and file sha256, the state, counters and the last refusal."""
    return jsonify(_status(services()))


@bp.post("/model/rollback")
def rollback():
    """Serve the good model before the current one (it also replaces the models dir's file); 409 if none."""
    svc = services()
    try:
        svc.models.rollback()
    except RollbackError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return jsonify(_status(svc))
