"""Inspection endpoints: inspect the current frame or an upload; the live loop's latest result."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, request

from rdk_agent.api import API_PREFIX, json_object, services
from rdk_agent.errors import ApiError
from rdk_agent.storage.images import ImageRejected, decode_depth_upload, decode_rgb_upload

bp = Blueprint("inspect", __name__, url_prefix=API_PREFIX)

CAMERA_MAX_AGE_S = 0.1  # share a frame the preview just read rather than grabbing another


@bp.post("/inspect")
def inspect():
    """Inspect the current camera frame (JSON or empty body) or a multipart upload (``image``, ``depth``)."""
    svc = services()
    if request.mimetype == "multipart/form-data":
        rgb, depth, decode_ms = _decode_upload(svc.config.max_image_pixels)
        source = "upload"
    else:
        if request.content_length:
            json_object(set())  # only an empty JSON object is accepted
        _, frame = svc.camera.latest(CAMERA_MAX_AGE_S)
        rgb, depth, decode_ms, source = frame.rgb, frame.depth, 0.0, "camera"
    result = svc.inspector.inspect(rgb, depth, decode_ms=decode_ms)
    result["source"] = source
    review = getattr(svc, "review", None)
    result["review_capture_id"] = review.offer(result, rgb, depth, source) if review is not None else None
    return jsonify(result)


def _decode_upload(max_pixels: int):
    unknown = sorted((set(request.form) | set(request.files)) - {"image", "depth"})
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field(s) {', '.join(unknown)}; allowed: image, depth")
    image = request.files.get("image")
    if image is None:
        raise ApiError(400, "missing_field", "multipart upload needs an 'image' file part")
    started = time.perf_counter()
    try:
        rgb = decode_rgb_upload(image.read(), max_pixels)
        depth_part = request.files.get("depth")
        depth = decode_depth_upload(depth_part.read(), max_pixels) if depth_part is not None else None
    except ImageRejected as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from None
    if depth is not None and depth.shape != rgb.shape[:2]:
        raise ApiError(
            400, "bad_depth", f"depth is {depth.shape[1]}x{depth.shape[0]}, image is {rgb.shape[1]}x{rgb.shape[0]}"
        )
    return rgb, depth, (time.perf_counter() - started) * 1000.0


@bp.get("/inspect/latest")
def latest():
    """The continuous inspection loop's latest result; 404 when the loop is off or has no result yet."""
    loop = getattr(services(), "live_inspection", None)
    if loop is None:
        raise ApiError(404, "not_found", "continuous inspection is off (set inspection.loop to true)")
    if loop.latest is None:
        raise ApiError(404, "not_found", "continuous inspection has no result yet")
    return jsonify(loop.latest)
