"""System endpoints: health, status, labels, and the token-for-cookie session exchange."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify

import rdk_agent
from rdk_agent.api import API_PREFIX, json_object, services
from rdk_agent.auth import set_session_cookie, token_matches
from rdk_agent.errors import ApiError

bp = Blueprint("system", __name__)


@bp.get("/healthz")
@bp.get(f"{API_PREFIX}/healthz")
def healthz():
    """Liveness, no token: the process serves requests."""
    return jsonify({"ok": True, "version": rdk_agent.__version__})


@bp.get(f"{API_PREFIX}/status")
def status():
    """Agent, labels, camera, storage, dataset, model and anomaly-model status."""
    svc = services()
    return jsonify(
        {
            "agent": {
                "version": rdk_agent.__version__,
                "started_at": svc.started_at_iso,
                "uptime_s": round(time.time() - svc.started_at, 1),
                "camera_spec": svc.config.camera,
            },
            "labels": {"name": svc.schema.name, "hash": svc.schema.hash, "names": svc.schema.names},
            "camera": svc.camera.status(),
            "storage": svc.store.storage_status(),
            "dataset": svc.store.stats(svc.config.target_per_class),
            "model": {**svc.models.summary(), "live_inspection": svc.live_inspection is not None},
            "anomaly": svc.inspector.anomaly.status() if svc.inspector.anomaly is not None else None,
        }
    )


@bp.get(f"{API_PREFIX}/labels")
def labels():
    """The station's label schema, with its hash."""
    return jsonify(services().schema.to_dict())


@bp.post(f"{API_PREFIX}/session")
def session():
    """Exchange the token for the HttpOnly session cookie the operator page uses."""
    body = json_object({"token"}, {"token"})
    token = current_app.config["RDK_TOKEN"]
    if not isinstance(body["token"], str) or not token_matches(body["token"], token):
        raise ApiError(401, "unauthorized", "wrong token")
    return set_session_cookie(jsonify({"ok": True}), token)
