"""Inspection endpoints: inspect the current frame or an upload; the live loop's latest result."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from rdk_agent.api import API_PREFIX, json_object, multipart_frame, services
from rdk_agent.errors import ApiError

bp = Blueprint("inspect", __name__, url_prefix=API_PREFIX)

CAMERA_MAX_AGE_S = 0.1  # share a frame the preview just read rather than grabbing another


@bp.post("/inspect")
def inspect():
    """Inspect the current camera frame (JSON or empty body) or a multipart upload (``image``, ``depth``)."""
    svc = services()
    if request.mimetype == "multipart/form-data":
        _, rgb, depth, decode_ms = multipart_frame(set(), svc.config.max_image_pixels)
        source = "upload"
    else:
        if request.content_length:
            json_object(set())  # only an empty JSON object is accepted
        _, frame = svc.camera.latest(CAMERA_MAX_AGE_S)
        rgb, depth, decode_ms, source = frame.rgb, frame.depth, 0.0, "camera"
    result = svc.inspector.inspect(rgb, depth, decode_ms=decode_ms)
    result["source"] = source
    result["review_capture_id"] = svc.review.offer(result, rgb, depth, source)
    return jsonify(result)


@bp.get("/inspect/latest")
def latest():
    """The continuous inspection loop's latest result; 404 when the loop is off or has no result yet."""
    loop = services().live_inspection
    if loop is None:
        raise ApiError(404, "not_found", "continuous inspection is off (set inspection.loop to true)")
    if loop.latest is None:
        raise ApiError(404, "not_found", "continuous inspection has no result yet")
    return jsonify(loop.latest)
