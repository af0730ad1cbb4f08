"""Capture endpoints: take or upload, list, read, relabel, delete, and serve images.

``POST /captures`` with JSON ``{"label", "meta"?}`` stores the current camera frame; a multipart
body with ``image`` (PNG/JPEG), optional ``depth`` (16-bit PNG, mm), ``label`` and ``meta`` (a JSON
object as text) stores an upload. ``label`` may be omitted or null: the capture then waits in the
review queue (``GET /captures?unlabelled=1``) and stays out of exports until labelled.

``group`` (JSON or multipart) names the part, weld or batch the capture shows. A capture that does
not name one gets the station's current group (``GET``/``PUT /current-group``); ``null`` or an
empty string stores it without a group. ``PATCH`` changes ``label``, ``group``, ``golden`` or
several, and ``GET /captures?group=`` lists one group's captures.

Golden set (see :mod:`rdk_agent.storage.golden`): each capture carries ``golden``; ``GET
/captures?golden=1|0`` filters by it; ``PATCH /captures/<id> {"golden": bool}`` and ``PATCH
/groups/<group> {"golden": bool}`` set it per capture or per group. ``GET /captures/<id>`` and
``GET /captures/<id>/history`` show the capture's audit trail (label changes while golden, golden
flag changes: who, from where, when, old and new); ``GET /golden`` gives the set's size per label
and signature, ``GET /golden/history`` the latest changes of the whole set.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, send_file, url_for

from rdk_agent.api import API_PREFIX, int_arg, json_object, multipart_frame, services
from rdk_agent.api.meta import parse_meta
from rdk_agent.errors import ApiError
from rdk_agent.storage.audit import Actor
from rdk_agent.storage.golden import signature
from rdk_agent.storage.groups import clean_group
from rdk_agent.storage.index import CaptureRecord

bp = Blueprint("captures", __name__, url_prefix=API_PREFIX)
MAX_LIMIT = 500
MAX_OFFSET = 2**31
MAX_HISTORY = 1000
_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


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


def _actor() -> Actor:
    """Who sends this request, as far as the agent can tell: how they authenticated, and from where."""
    how = "bearer token" if request.headers.get("Authorization") else "page session"
    return Actor(how, request.remote_addr)


def _golden_value(value: object) -> bool:
    """A JSON ``golden`` field: true or false only."""
    if not isinstance(value, bool):
        raise ApiError(400, "bad_field", f"golden must be true or false, got {str(value)[:40]!r}")
    return value


def _golden_arg() -> bool | None:
    """``?golden=1|0`` (true/false, yes/no); None when absent."""
    raw = request.args.get("golden", "")
    if raw == "":
        return None
    if raw.lower() in _TRUE + _FALSE:
        return raw.lower() in _TRUE
    raise ApiError(400, "bad_parameter", f"golden must be 1 or 0 (true or false), got {raw[:40]!r}")


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
    """Newest first; ``label=``, ``unlabelled=1``, ``group=``, ``golden=1|0``, ``limit`` (≤ 500), ``offset``."""
    store = services().store
    label = request.args.get("label") or None
    if label is not None:
        store.check_label(label)
    group = clean_group(request.args.get("group"))
    unlabelled = request.args.get("unlabelled", "").lower() in _TRUE
    golden = _golden_arg()
    limit = int_arg("limit", 50, 1, MAX_LIMIT)
    offset = int_arg("offset", 0, 0, MAX_OFFSET)
    items, total = store.page(
        label=label, unlabelled=unlabelled, group=group, golden=golden, limit=limit, offset=offset
    )
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
    """One capture's record, with its golden-set audit trail under ``history`` (newest first)."""
    store = services().store
    out = _json(store.get(sample_id))
    out["history"] = [entry.to_dict() for entry in store.golden_audit(sample_id, MAX_HISTORY)]
    return jsonify(out)


@bp.get("/captures/<sample_id>/history")
def capture_history(sample_id: str):
    """``{"id", "golden", "history"}``: the capture's golden-set changes, newest first."""
    store = services().store
    rec = store.get(sample_id)
    history = [entry.to_dict() for entry in store.golden_audit(sample_id, MAX_HISTORY)]
    return jsonify({"id": rec.id, "golden": rec.golden, "history": history})


@bp.patch("/captures/<sample_id>")
def relabel(sample_id: str):
    """``{"label"?, "group"?, "golden"?}``: relabel (null: back to the review queue), regroup (null: no group),
    put in or take out of the golden set. Everything is checked before anything changes."""
    body = json_object({"label", "group", "golden"})
    if not body:
        raise ApiError(400, "missing_field", "send label, group, golden or several")
    store = services().store
    store.check_label(body.get("label"))
    clean_group(body.get("group"))
    if "golden" in body:
        _golden_value(body["golden"])
    rec = store.get(sample_id)
    actor = _actor()
    if "label" in body:
        rec = store.relabel(sample_id, body["label"], actor)
    if "group" in body:
        rec = store.regroup(sample_id, body["group"])
    if "golden" in body:
        rec = store.set_golden(sample_id, body["golden"], actor)
    return jsonify(_json(rec))


@bp.patch("/groups/<path:group>")
def set_group(group: str):
    """``{"golden": bool}``: put every capture of the group in the golden set or take them out.

    Answers ``{"group", "golden", "captures", "changed"}``; 404 when no capture has this group.
    """
    body = json_object({"golden"}, {"golden"})
    golden = _golden_value(body["golden"])
    key = clean_group(group)
    if key is None:
        raise ApiError(400, "invalid_group", "name a group")
    captures, changed = services().store.set_group_golden(key, golden, _actor())
    if captures == 0:
        raise ApiError(404, "not_found", f"no capture has group {key[:80]!r}")
    return jsonify({"group": key, "golden": golden, "captures": captures, "changed": changed})


@bp.get("/golden")
def golden_set():
    """``{"signature", "count", "labels": {label: n}, "ids"}``: the labelled, intact golden captures."""
    store = services().store
    samples = store.golden_samples()
    labels = {name: 0 for name in store.schema.names}
    for sample in samples:
        labels[sample.label] += 1
    return jsonify(
        {
            "signature": signature(samples),
            "count": len(samples),
            "labels": labels,
            "ids": [sample.id for sample in samples],
        }
    )


@bp.get("/golden/history")
def golden_history():
    """``{"history"}``: the latest golden-set changes of every capture, newest first (``limit`` ≤ 1000)."""
    limit = int_arg("limit", 200, 1, MAX_HISTORY)
    return jsonify({"history": [entry.to_dict() for entry in services().store.golden_audit(None, limit)]})


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
    """Remove a capture and its files (audited when it was golden)."""
    services().store.delete(sample_id, _actor())
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
