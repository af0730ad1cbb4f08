"""SharedCamera: one reader of a CameraSource shared by captures, inspections and every MJPEG viewer.

Reads are serialised. ``latest(max_age)`` hands out the last frame while it is younger than
``max_age`` so N viewers cost one camera read and one JPEG encode per frame interval, not N.
``read()`` always takes a fresh frame (a capture must show what is in front of the camera now).
Nothing runs while nobody asks for frames, which keeps an idle board idle.
"""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np

from rdk_agent.camera.base import CameraError, CameraSource, Frame

PREVIEW_JPEG_QUALITY = 80
VIEWS = ("rgb", "depth")


class NoDepth(CameraError):
    """The depth view was asked of a camera whose frames carry no depth."""


class SceneNotSupported(CameraError):
    """The camera cannot be told what to show (only the synthetic camera can)."""


class SharedCamera(CameraSource):
    """Serialised, cached access to one CameraSource."""

    def __init__(self, source: CameraSource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._seq = 0
        self._jpeg: dict[str, tuple[int, bytes]] = {}
        self._errors = 0

    def read(self) -> Frame:
        """A fresh frame from the source."""
        with self._lock:
            return self._read_locked()

    def _read_locked(self) -> Frame:
        try:
            frame = self.source.read()
        except CameraError:
            self._errors += 1
            raise
        self._frame = frame
        self._seq += 1
        return frame

    def latest(self, max_age: float) -> tuple[int, Frame]:
        """``(seq, frame)``: the cached frame if younger than ``max_age`` seconds, else a fresh one."""
        with self._lock:
            frame = self._frame
            if frame is None or time.time() - frame.timestamp > max_age:
                frame = self._read_locked()
            return self._seq, frame

    def latest_jpeg(self, max_age: float, view: str = "rgb") -> tuple[int, bytes]:
        """``(seq, jpeg)`` for the MJPEG preview, encoded once per frame and view whatever the viewer count.

        ``view="depth"`` shows the depth map colour-mapped (near red, far blue, no reading black); NoDepth when
        the frame has none.
        """
        seq, frame = self.latest(max_age)
        with self._lock:
            cached = self._jpeg.get(view)
            if cached is not None and cached[0] == seq:
                return cached
        if view == "depth":
            if frame.depth is None:
                raise NoDepth(f"the {self.status().get('kind', 'current')} camera gives no depth")
            image = depth_preview(frame.depth)
        else:
            image = frame.rgb
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_JPEG_QUALITY])
        if not ok:
            raise CameraError("cannot encode the preview frame as JPEG")
        with self._lock:
            self._jpeg[view] = (seq, buf.tobytes())
            return self._jpeg[view]

    def set_scene(self, label: str | None, seed: int | None = None) -> None:
        """Tell a synthetic camera what to show next (with ``seed``: a new batch of parts); else SceneNotSupported."""
        setter = getattr(self.source, "set_scene", None)
        if setter is None:
            raise SceneNotSupported(f"the {self.status().get('kind', 'current')} camera has no scene to set")
        with self._lock:
            setter(label, seed)
            self._frame = None

    def status(self) -> dict:
        """The source's status (always with ``connected`` and ``last_error``) plus the age of the last frame."""
        out = dict(self.source.status())
        out.setdefault("connected", True)
        out.setdefault("last_error", None)
        frame = self._frame
        out["last_frame_age_s"] = round(time.time() - frame.timestamp, 3) if frame is not None else None
        out["read_errors"] = self._errors
        out["has_depth"] = None if frame is None else frame.depth is not None
        return out

    def close(self) -> None:
        """Close the source."""
        self.source.close()


def depth_preview(depth: np.ndarray) -> np.ndarray:
    """BGR picture of a depth map in mm: the 2nd..98th percentile of the readings spread over a colour map."""
    valid = depth > 0
    out = np.zeros((*depth.shape, 3), np.uint8)
    if not valid.any():
        return out
    lo, hi = np.percentile(depth[valid], [2, 98])
    scaled = np.clip((depth.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1.0)), 0, 255).astype(np.uint8)
    coloured = cv2.applyColorMap(255 - scaled, cv2.COLORMAP_JET)
    out[valid] = coloured[valid]
    return out
