"""The live preview: ``GET stream.mjpg`` (multipart/x-mixed-replace MJPEG) at a capped frame rate.

All viewers share one camera reader and one JPEG encode per frame (see SharedCamera). Each viewer
holds one server thread for as long as it watches, so viewers are capped (``max_streams``, 503
beyond it, after a short wait for a viewer that just left) to keep threads for the API.
While the camera is down the stream waits and resumes. ``?view=depth`` streams the depth map colour-mapped
(409 ``no_depth`` when the camera gives none).
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, request
from werkzeug.wsgi import ClosingIterator

from rdk_agent.api import API_PREFIX, services
from rdk_agent.camera.base import CameraError
from rdk_agent.camera.hub import VIEWS
from rdk_agent.errors import ApiError

bp = Blueprint("stream", __name__, url_prefix=API_PREFIX)
BOUNDARY = "rdkframe"
CAMERA_RETRY_S = 1.0
SLOT_WAIT_S = 2.0  # a viewer that just left frees its slot at the stream's next write


@bp.get("/stream.mjpg")
def stream():
    """MJPEG preview until the client goes away or the agent stops; ``?view=depth`` shows the depth map."""
    svc = services()
    view = request.args.get("view", "rgb")
    if view not in VIEWS:
        raise ApiError(400, "bad_parameter", f"view must be one of {', '.join(VIEWS)}, got {view!r}")
    if view == "depth":
        _check_depth(svc)
    if not svc.stream_slots.acquire(timeout=SLOT_WAIT_S):
        raise ApiError(503, "too_many_streams", f"{svc.config.max_streams} preview streams are open already")
    interval = 1.0 / svc.config.stream_fps

    def frames():
        last_seq = None
        while not svc.closing.is_set():
            started = time.monotonic()
            try:
                seq, jpeg = svc.camera.latest_jpeg(max_age=interval, view=view)
            except CameraError:
                svc.closing.wait(CAMERA_RETRY_S)
                continue
            if seq != last_seq:
                last_seq = seq
                yield (
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                    + jpeg
                    + b"\r\n"
                )
            svc.closing.wait(max(0.0, interval - (time.monotonic() - started)))

    body = ClosingIterator(frames(), [svc.stream_slots.release])
    return Response(
        body,
        mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        direct_passthrough=True,
    )


def _check_depth(svc) -> None:
    """409 when the camera's frames carry no depth (a camera that is down now is waited for, as for rgb)."""
    try:
        _, frame = svc.camera.latest(max_age=1.0)
    except CameraError:
        return
    if frame.depth is None:
        kind = svc.camera.status().get("kind", "current")
        raise ApiError(409, "no_depth", f"the {kind} camera gives no depth; the depth view needs a stereo: camera")
