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
    """``{"label", "seed"?}``: what the synthetic camera shows next (null = random), optionally from a new
    batch of parts (another generator seed); 409 for other cameras."""
    body = json_object({"label", "seed"}, {"label"})
    label, seed = body["label"], body.get("seed")
    if label is not None and not isinstance(label, str):
        raise ApiError(400, "bad_parameter", "label must be a string or null")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32):
        raise ApiError(400, "bad_parameter", "seed must be an integer in 0 .. 2**32-1")
    try:
        services().camera.set_scene(label, seed)
    except SceneNotSupported as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except (KeyError, ValueError) as exc:
        raise ApiError(400, "unknown_label", str(exc.args[0] if exc.args else exc)) from None
    return jsonify({"scene": label, "seed": services().camera.status().get("seed")})
