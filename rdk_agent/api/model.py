"""Model endpoints: what serves and why, and rollback to the previous good model."""

from __future__ import annotations

from flask import Blueprint, jsonify

from rdk_agent.api import API_PREFIX, services
from rdk_agent.errors import ApiError
from rdk_agent.inspection.model_manager import RollbackError
from rdk_agent.inspection.thresholds import resolve_thresholds

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
    active = svc.models.active
    card = active.classifier.card if active is not None else None
    thresholds = resolve_thresholds(settings, card)
    status["settings"].update(
        confidence_threshold=thresholds.confidence,
        review_threshold=thresholds.review,
        timeout_ms=settings.timeout_ms,
        rules=settings.rules,
    )
    status["thresholds"] = {
        **thresholds.to_dict(),
        "station": {"confidence": settings.confidence_threshold, "review": settings.review_threshold},
        "card": {
            "confidence": card.confidence_threshold if card is not None else None,
            "review": card.review_threshold if card is not None else None,
        },
    }
    return status


@bp.get("/model")
def model_status():
    """The serving model's card, load time and file sha256, the state, counters, the last refusal, and the
    thresholds in force with their sources (station setting, model card or default)."""
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
