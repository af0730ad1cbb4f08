"""Model endpoints: what serves and why, and rollback to the previous good model."""

from __future__ import annotations

from flask import Blueprint, jsonify

from rdk_agent.api import API_PREFIX, services
from rdk_agent.errors import ApiError
from rdk_agent.inspection.model_manager import RollbackError
from rdk_agent.services import AgentServices

bp = Blueprint("model", __name__, url_prefix=API_PREFIX)


def _status(svc: AgentServices) -> dict:
    return {**svc.models.status(), "counters": svc.telemetry.model_counters()}


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
