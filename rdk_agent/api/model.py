"""Model endpoints: what serves and why, the kept versions, promotion and rollback."""

from __future__ import annotations

import re

from flask import Blueprint, jsonify, request

from rdk_agent.api import API_PREFIX, json_object, services
from rdk_agent.errors import ApiError
from rdk_agent.inspection.model_manager import PromotionError, RollbackError, UnknownVersion
from rdk_agent.services import AgentServices

bp = Blueprint("model", __name__, url_prefix=API_PREFIX)

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def _status(svc: AgentServices) -> dict:
    return {**svc.models.status(), "counters": svc.telemetry.model_counters()}


def _sha(value: object) -> str:
    if not isinstance(value, str) or not SHA256_RE.match(value):
        raise ApiError(400, "bad_sha256", "sha256 must be 64 lowercase hex digits (see GET /api/v1/models)")
    return value


def _unknown(sha: str) -> ApiError:
    return ApiError(404, "not_found", f"no model version {sha[:12]}... is kept on this board (GET /api/v1/models)")


@bp.get("/model")
def model_status():
    """The serving model's card, load time and file sha256, the state, counters, the last refusal, the champion
    and challenger versions, and the thresholds in force with their sources (station, model card or default)."""
    return jsonify(_status(services()))


@bp.get("/models")
def versions():
    """Every model version that reached the board, newest first."""
    return jsonify({"versions": services().models.registry.listing()})


@bp.get("/models/<sha256>")
def version(sha256: str):
    """One version; 404 when unknown."""
    sha = _sha(sha256)
    try:
        return jsonify(services().models.version(sha))
    except UnknownVersion:
        raise _unknown(sha) from None


@bp.post("/model/promote")
def promote():
    """Make a kept, non-refused version the champion (``{"sha256": ...}``); 404 unknown, 409 not promotable."""
    svc = services()
    sha = _sha(json_object({"sha256"}, {"sha256"})["sha256"])
    try:
        svc.models.promote(sha)
    except UnknownVersion:
        raise _unknown(sha) from None
    except PromotionError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return jsonify(_status(svc))


@bp.post("/model/rollback")
def rollback():
    """Serve the previous champion, or the kept version ``{"sha256": ...}``; it also replaces the models dir's
    file. 409 when there is none or it cannot serve, 404 for an unknown sha256."""
    svc = services()
    body = json_object({"sha256"}) if request.content_length else {}
    sha = _sha(body["sha256"]) if body.get("sha256") is not None else None
    try:
        svc.models.rollback(sha)
    except UnknownVersion:
        raise _unknown(sha or "") from None
    except RollbackError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return jsonify(_status(svc))
