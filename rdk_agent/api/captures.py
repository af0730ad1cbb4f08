"""Capture endpoints: take or upload, list, read, relabel, delete, and serve images.

``POST /captures`` with JSON ``{"label", "meta"?}`` stores the current camera frame; a multipart
body with ``image`` (PNG/JPEG), optional ``depth`` (16-bit PNG, mm), ``label`` and ``meta`` (a JSON
object as text) stores an upload. ``label`` may be omitted or null: the capture then waits in the
review queue (``GET /captures?unlabelled=1``) and stays out of exports until labelled.

``group`` (JSON or multipart) names the part, weld or batch the capture shows. A capture that does
not name one gets the station's current group (``GET``/``PUT /current-group``); ``null`` or an
empty string stores it without a group. ``PATCH`` changes ``label``, ``group`` or both, and
``GET /captures?group=`` lists one group's captures.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, send_file, url_for

from rdk_agent.api import API_PREFIX, int_arg, json_object, multipart_frame, services
from rdk_agent.api.meta import parse_meta
from rdk_agent.errors import ApiError
from rdk_agent.storage.groups import clean_group
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


def _named_group(fields) -> str | None:
    """The capture's own group: None when the request names none (the current group applies), "" for null."""
    if "group" not in fields:
        return None
    value = fields["group"]
    return "" if value is None else value


@bp.post("/captures")
def create_capture():
    """Capture the current frame (JSON) or store an upload (multipart); 201 with the record."""
    svc = services()
    if request.mimetype == "multipart/form-data":
        rec = _store_upload(svc)
    else:
        body = json_object({"label", "meta", "group"})
        label = svc.store.check_label(body.get("label"))
        meta = parse_meta(body.get("meta"), svc.config.max_meta_bytes)
        group = _named_group(body)
        clean_group(group)  # refuse a bad group before taking the frame
        frame = svc.camera.read()
        meta = {"camera": frame.meta, **meta} if frame.meta else meta
        rec = svc.store.add(
            frame.rgb, frame.depth, label, "camera", meta=meta, captured_at=frame.timestamp, group=group
        )
    svc.telemetry.record_capture(rec.label)
    response = jsonify(_json(rec))
    response.status_code = 201
    response.headers["Location"] = url_for("captures.get_capture", sample_id=rec.id)
    return response


def _store_upload(svc) -> CaptureRecord:
    image, rgb, depth, _ = multipart_frame({"label", "meta", "group"}, svc.config.max_image_pixels)
    label = svc.store.check_label(request.form.get("label") or None)
    meta = parse_meta(request.form.get("meta"), svc.config.max_meta_bytes)
    meta = {"upload": {"filename": (image.filename or "")[:200]}, **meta}
    return svc.store.add(rgb, depth, label, "upload", meta=meta, group=_named_group(request.form))


@bp.get("/captures")
def list_captures():
    """Newest first; ``label=``, ``unlabelled=1``, ``group=``, ``limit`` (≤ 500), ``offset``."""
    store = services().store
    label = request.args.get("label") or None
    if label is not None:
        store.check_label(label)
    group = clean_group(request.args.get("group"))
    unlabelled = request.args.get("unlabelled", "").lower() in ("1", "true", "yes")
    limit = int_arg("limit", 50, 1, MAX_LIMIT)
    offset = int_arg("offset", 0, 0, MAX_OFFSET)
    items, total = store.page(label=label, unlabelled=unlabelled, group=group, limit=limit, offset=offset)
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
    """``{"label"?, "group"?}``: relabel (null returns it to the review queue), regroup (null: no group)."""
    body = json_object({"label", "group"})
    if not body:
        raise ApiError(400, "missing_field", "send label, group or both")
    store = services().store
    store.check_label(body.get("label"))  # both checked before either changes
    clean_group(body.get("group"))
    rec = store.get(sample_id)
    if "label" in body:
        rec = store.relabel(sample_id, body["label"])
    if "group" in body:
        rec = store.regroup(sample_id, body["group"])
    return jsonify(_json(rec))


@bp.get("/current-group")
def current_group():
    """``{"group"}``: the group given to captures that name none (null: none)."""
    return jsonify({"group": services().store.current_group.get()})


@bp.put("/current-group")
def set_current_group():
    """``{"group"}``: set the current group (1 to 64 printable characters; null or "" clears it)."""
    body = json_object({"group"}, {"group"})
    return jsonify({"group": services().store.current_group.set(body["group"])})


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
