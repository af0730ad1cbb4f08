"""The live preview: ``GET stream.mjpg`` (multipart/x-mixed-replace MJPEG) at a capped frame rate.

All viewers share one camera reader and one JPEG encode per frame (see SharedCamera). Each viewer
holds one server thread for as long as it watches, so viewers are capped (``max_streams``, 503
beyond it, after a short wait for a viewer that just left) to keep threads for the API.
While the camera is down the stream waits and resumes.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response
from werkzeug.wsgi import ClosingIterator

from rdk_agent.api import API_PREFIX, services
from rdk_agent.camera.base import CameraError
from rdk_agent.errors import ApiError

bp = Blueprint("stream", __name__, url_prefix=API_PREFIX)
BOUNDARY = "rdkframe"
CAMERA_RETRY_S = 1.0
SLOT_WAIT_S = 2.0  # a viewer that just left frees its slot at the stream's next write


@bp.get("/stream.mjpg")
def stream():
    """MJPEG preview until the client goes away or the agent stops."""
    svc = services()
    if not svc.stream_slots.acquire(timeout=SLOT_WAIT_S):
        raise ApiError(503, "too_many_streams", f"{svc.config.max_streams} preview streams are open already")
    interval = 1.0 / svc.config.stream_fps

    def frames():
        last_seq = None
        while not svc.closing.is_set():
            started = time.monotonic()
            try:
                seq, jpeg = svc.camera.latest_jpeg(max_age=interval)
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
