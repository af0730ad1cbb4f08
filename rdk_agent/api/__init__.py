"""HTTP API under /api/v1: the blueprints' shared helpers and the services' errors as JSON answers.

Blueprints (registered by ``rdk_agent.app.create_app``): system (healthz, status, labels, session),
captures (and current-group), dataset, stream, camera, inspect, model, and metrics (``/metrics``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Set as AbstractSet

import numpy as np
from flask import Flask, current_app, request
from werkzeug.datastructures import FileStorage

from rdk_agent.camera.base import CameraError
from rdk_agent.errors import ApiError, error_response
from rdk_agent.services import EXTENSION_KEY, AgentServices
from rdk_agent.storage import CaptureNotFound, InsufficientStorage, InvalidGroup, UnknownLabel
from rdk_agent.storage.images import ImageRejected, decode_depth_upload, decode_rgb_upload

API_PREFIX = "/api/v1"


def services() -> AgentServices:
    """The services of the app handling the current request."""
    return current_app.extensions[EXTENSION_KEY]


def json_object(allowed: AbstractSet[str], required: AbstractSet[str] = frozenset()) -> dict:
    """The request's JSON object body, with unknown and missing fields refused."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send a JSON body with Content-Type: application/json")
    try:
        data = json.loads(request.get_data(cache=True))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None
    except RecursionError:  # e.g. 50,000 nested brackets: json raises this, not a ValueError
        raise ApiError(400, "malformed_json", "request body is nested too deeply to be a request") from None
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "request body must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ApiError(
            400, "unknown_field", f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    missing = sorted(required - set(data))
    if missing:
        raise ApiError(400, "missing_field", f"missing field(s) {', '.join(missing)}")
    return data


def int_arg(name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter within ``[lo, hi]``."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be an integer, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise ApiError(400, "bad_parameter", f"{name} must be between {lo} and {hi}, got {value}")
    return value


def multipart_frame(
    extra_fields: set[str], max_pixels: int
) -> tuple[FileStorage, np.ndarray, np.ndarray | None, float]:
    """The multipart upload's checked ``image`` and optional ``depth``, plus the decode time in ms.

    Fields other than image, depth and ``extra_fields`` are refused; so are non-images, images over
    ``max_pixels`` and a depth map whose size differs from the image's.
    """
    allowed = {"image", "depth"} | extra_fields
    unknown = sorted((set(request.form) | set(request.files)) - allowed)
    if unknown:
        raise ApiError(
            400, "unknown_field", f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
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
    return image, rgb, depth, (time.perf_counter() - started) * 1000.0


def register_service_errors(app: Flask) -> None:
    """Map the services' exceptions (storage, camera) to JSON error answers."""

    @app.errorhandler(CaptureNotFound)
    def _not_found(exc: CaptureNotFound):
        return error_response(404, "not_found", f"no capture with id {str(exc.args[0])[:80]!r}")

    @app.errorhandler(UnknownLabel)
    def _unknown_label(exc: UnknownLabel):
        return error_response(400, "unknown_label", str(exc))

    @app.errorhandler(InvalidGroup)
    def _invalid_group(exc: InvalidGroup):
        return error_response(400, "invalid_group", str(exc))

    @app.errorhandler(InsufficientStorage)
    def _full(exc: InsufficientStorage):
        return error_response(507, "insufficient_storage", exc.strerror or str(exc))

    @app.errorhandler(CameraError)
    def _camera(exc: CameraError):
        return error_response(503, "camera_unavailable", str(exc))
