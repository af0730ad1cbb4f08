"""Camera endpoints: status, and the synthetic camera's scene (what the operator 'placed')."""

from __future__ import annotations

from flask import Blueprint, jsonify

from rdk_agent.api import API_PREFIX, json_object, services
from rdk_agent.camera.hub import SceneNotSupported
from rdk_agent.errors import ApiError

bp = Blueprint("camera", __name__, url_prefix=API_PREFIX)


@bp.get("/camera")
def camera_status():
    """The camera's status."""
    return jsonify(services().camera.status())


@bp.post("/camera/scene")
def set_scene():
    """``{"label"}``: choose what the synthetic camera shows next (null = random); 409 for other cameras."""
    body = json_object({"label"}, {"label"})
    label = body["label"]
    if label is not None and not isinstance(label, str):
        raise ApiError(400, "bad_parameter", "label must be a string or null")
    try:
        services().camera.set_scene(label)
    except SceneNotSupported as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except (KeyError, ValueError) as exc:
        raise ApiError(400, "unknown_label", str(exc.args[0] if exc.args else exc)) from None
    return jsonify({"scene": label})
