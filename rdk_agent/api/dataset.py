"""Dataset endpoints: stats, the manifest, the streamed archive, and content-addressed files."""

from __future__ import annotations

import re
import time

from flask import Blueprint, Response, jsonify, request, send_file
from werkzeug.wsgi import wrap_file

from rdk_agent.api import API_PREFIX, services
from rdk_agent.errors import ApiError
from rdk_agent.storage.export import BUFFER, GzipStream, build_manifest, open_export

bp = Blueprint("dataset", __name__, url_prefix=f"{API_PREFIX}/dataset")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@bp.get("/stats")
def stats():
    """Captures per label against the target (default 100 per class), unlabelled count, bytes."""
    svc = services()
    return jsonify(svc.store.stats(svc.config.target_per_class))


@bp.get("/manifest")
def manifest():
    """The DatasetManifest of the labelled, intact captures (paths relative, e.g. samples/<id>/rgb.png)."""
    svc = services()
    return jsonify(build_manifest(svc.store.dataset_id, svc.schema, svc.store.exportable()).to_dict())


@bp.get("/export")
def export():
    """``?format=tar|tar.gz``: manifest.json then every file, streamed; the manifest is snapshotted now."""
    fmt = request.args.get("format", "tar")
    if fmt not in ("tar", "tar.gz"):
        raise ApiError(400, "bad_parameter", f"format must be 'tar' or 'tar.gz', got {fmt[:20]!r}")
    store = services().store
    archive = open_export(store)
    name = f"{store.dataset_id}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.{fmt}"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Dataset-Id": store.dataset_id,
        "X-Sample-Count": str(archive.sample_count),
        "Cache-Control": "no-store",
    }
    if request.method == "HEAD":  # no body will be read, so nothing would close the archive
        archive.close()
    if fmt == "tar":
        headers["Content-Length"] = str(archive.size)
        # waitress sends from the reader itself; werkzeug types the file as IO[bytes] but only reads, seeks, closes
        body = wrap_file(request.environ, archive, BUFFER)  # type: ignore[arg-type]
        return Response(body, mimetype="application/x-tar", headers=headers, direct_passthrough=True)
    return Response(GzipStream(archive), mimetype="application/gzip", headers=headers, direct_passthrough=True)


@bp.get("/files/<sha256>")
def file_by_hash(sha256: str):
    """A stored file by its sha256; ETag is the sha256, If-None-Match gives 304, Range gives 206."""
    if not SHA256_RE.match(sha256):
        raise ApiError(400, "bad_parameter", "expected 64 lowercase hex characters")
    path = services().store.file_for_sha(sha256)
    if path is None or not path.is_file():
        raise ApiError(404, "not_found", f"no stored file with sha256 {sha256}")
    response = send_file(path, mimetype="image/png", etag=sha256, conditional=True, max_age=31536000)
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
