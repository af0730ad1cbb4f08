"""Capture endpoints: take or upload, list, read, relabel, delete, and serve images.

``POST /captures`` with JSON ``{"label", "meta"?}`` stores the current camera frame; a multipart
body with ``image`` (PNG/JPEG), optional ``depth`` (16-bit PNG, mm), ``label`` and ``meta`` (a JSON
object as text) stores an upload. ``label`` may be omitted or null: the capture then waits in the
review queue (``GET /captures?unlabelled=1``) and stays out of exports until labelled.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request, send_file, url_for

from rdk_agent.api import API_PREFIX, int_arg, json_object, multipart_frame, services
from rdk_agent.errors import ApiError
from rdk_agent.storage.index import CaptureRecord

bp = Blueprint("captures", __name__, url_prefix=API_PREFIX)
MAX_LIMIT = 500
MAX_OFFSET = 2**31


def _json(rec: CaptureRecord) -> dict:
    out = rec.to_dict()
    out["problem"] = services().store.integrity.problem(rec.id)
    out["urls"] = {
        "self": url_for("captures.get_capture", sample_id=rec.id),
        "image": url_for("captures.image", sample_id=rec.id),
        "thumbnail": url_for("captures.thumbnail", sample_id=rec.id),
    }
    if rec.depth:
        out["urls"]["depth"] = url_for("captures.depth", sample_id=rec.id)
    return out


def _meta(value: object) -> dict:
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ApiError(400, "bad_parameter", "meta must be a JSON object") from None
    if not isinstance(value, dict):
        raise ApiError(400, "bad_parameter", "meta must be a JSON object")
    return value


@bp.post("/captures")
def create_capture():
    """Capture the current frame (JSON) or store an upload (multipart); 201 with the record."""
    svc = services()
    if request.mimetype == "multipart/form-data":
        rec = _store_upload(svc)
    else:
        body = json_object({"label", "meta"})
        label = svc.store.check_label(body.get("label"))
        meta = _meta(body.get("meta"))
        frame = svc.camera.read()
        meta = {"camera": frame.meta, **meta} if frame.meta else meta
        rec = svc.store.add(frame.rgb, frame.depth, label, "camera", meta=meta, captured_at=frame.timestamp)
    svc.telemetry.record_capture(rec.label)
    response = jsonify(_json(rec))
    response.status_code = 201
    response.headers["Location"] = url_for("captures.get_capture", sample_id=rec.id)
    return response


def _store_upload(svc) -> CaptureRecord:
    image, rgb, depth, _ = multipart_frame({"label", "meta"}, svc.config.max_image_pixels)
    label = svc.store.check_label(request.form.get("label") or None)
    meta = _meta(request.form.get("meta"))
    meta = {"upload": {"filename": (image.filename or "")[:200]}, **meta}
    return svc.store.add(rgb, depth, label, "upload", meta=meta)


@bp.get("/captures")
def list_captures():
    """Newest first; ``label=``, ``unlabelled=1``, ``limit`` (≤ 500), ``offset``."""
    store = services().store
    label = request.args.get("label") or None
    if label is not None:
        store.check_label(label)
    unlabelled = request.args.get("unlabelled", "").lower() in ("1", "true", "yes")
    limit = int_arg("limit", 50, 1, MAX_LIMIT)
    offset = int_arg("offset", 0, 0, MAX_OFFSET)
    items, total = store.page(label=label, unlabelled=unlabelled, limit=limit, offset=offset)
    next_offset = offset + len(items) if offset + len(items) < total else None
    return jsonify(
        {
            "items": [_json(r) for r in items],
            "total": total,
            "limit": limit,
            "offset": offset,
            "next_offset": next_offset,
        }
    )


@bp.get("/captures/<sample_id>")
def get_capture(sample_id: str):
    """One capture's record."""
    return jsonify(_json(services().store.get(sample_id)))


@bp.patch("/captures/<sample_id>")
def relabel(sample_id: str):
    """``{"label"}``: relabel (null returns it to the review queue)."""
    body = json_object({"label"}, {"label"})
    return jsonify(_json(services().store.relabel(sample_id, body["label"])))


@bp.delete("/captures/<sample_id>")
def delete(sample_id: str):
    """Remove a capture and its files."""
    services().store.delete(sample_id)
    return jsonify({"deleted": sample_id})


def _send_stored(relpath: str, mimetype: str, etag: str):
    path = services().store.path_of(relpath)
    if not path.is_file():
        raise ApiError(404, "file_missing", f"{relpath} is missing from the data dir (see status.storage.integrity)")
    return send_file(path, mimetype=mimetype, etag=etag, conditional=True)


@bp.get("/captures/<sample_id>/image")
def image(sample_id: str):
    """The stored RGB PNG."""
    rec = services().store.get(sample_id)
    return _send_stored(rec.rgb.path, "image/png", rec.rgb.sha256)


@bp.get("/captures/<sample_id>/depth")
def depth(sample_id: str):
    """The stored 16-bit depth PNG (millimetres); 404 when the capture has none."""
    rec = services().store.get(sample_id)
    if rec.depth is None:
        raise ApiError(404, "not_found", f"capture {sample_id} has no depth")
    return _send_stored(rec.depth.path, "image/png", rec.depth.sha256)


@bp.get("/captures/<sample_id>/thumbnail")
def thumbnail(sample_id: str):
    """A small JPEG for the gallery, generated once and cached."""
    try:
        thumb = services().store.thumbnail(sample_id)
    except FileNotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    if isinstance(thumb, bytes):  # not cached: the disk is full
        return Response(thumb, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})
    return send_file(thumb, mimetype="image/jpeg", conditional=True, max_age=3600)
