"""OpenCVCamera: a real camera (or a video file) through cv2.VideoCapture, robust to unplugging.

The device is opened lazily by a grabber thread on the first ``read()``. The thread keeps only the
latest frame (so V4L2's queued buffers never hand out stale images), and after any failure it
releases the device and reopens it with exponential backoff, without disturbing the agent. When
nobody has read for ``idle_release_s`` it releases the device and stops until the next read.
"""

from __future__ import annotations

import threading
import time

import cv2

from rdk_agent.camera.base import CameraError, CameraSource, Frame


class OpenCVCamera(CameraSource):
    """Frames from ``cv2.VideoCapture(target)``; ``target`` is an index, a device/file path or a pipeline."""

    def __init__(
        self, target: str, read_timeout_s: float = 2.0, max_backoff_s: float = 5.0, idle_release_s: float = 30.0
    ) -> None:
        self.target = target
        self.read_timeout_s = read_timeout_s
        self.max_backoff_s = max_backoff_s
        self.idle_release_s = idle_release_s
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._seq = 0
        self._connected = False
        self._last_error: str | None = None
        self._reconnects = 0
        self._last_read = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _open(self) -> cv2.VideoCapture:
        if self.target.isdigit():
            cap = cv2.VideoCapture(int(self.target))
        elif "!" in self.target:
            cap = cv2.VideoCapture(self.target, cv2.CAP_GSTREAMER)
        else:
            cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"cannot open camera {self.target!r}")
        return cap

    def _grab_loop(self) -> None:
        backoff = 0.25
        cap = None
        while not self._stop.is_set():
            with self._cond:
                if time.monotonic() - self._last_read > self.idle_release_s:
                    self._thread = None
                    self._connected = False
                    break
            try:
                if cap is None:
                    cap = self._open()
                    with self._cond:
                        self._connected = True
                ok, image = cap.read()
                if not ok or image is None:
                    raise CameraError(f"camera {self.target!r} returned no frame")
            except (CameraError, cv2.error) as exc:
                if cap is not None:
                    cap.release()
                    cap = None
                with self._cond:
                    self._connected = False
                    self._last_error = str(exc)
                    self._reconnects += 1
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            backoff = 0.25
            with self._cond:
                self._seq += 1
                self._last_error = None
                self._frame = Frame(
                    rgb=image, depth=None, timestamp=time.time(), meta={"source": "opencv", "seq": self._seq}
                )
                self._cond.notify_all()
        if cap is not None:
            cap.release()

    def read(self) -> Frame:
        """The newest frame grabbed after this call began; CameraError if none arrives in time."""
        with self._cond:
            self._last_read = time.monotonic()
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._grab_loop, name="opencv-grabber", daemon=True)
                self._thread.start()
            seq = self._seq
            if not self._cond.wait_for(lambda: self._seq > seq, timeout=self.read_timeout_s):
                reason = self._last_error or "no frame yet"
                raise CameraError(f"camera {self.target!r} unavailable: {reason}")
            assert self._frame is not None  # set with every _seq step
            return self._frame

    def status(self) -> dict:
        """Connection state, last error and reconnect count."""
        with self._cond:
            return {
                "kind": "opencv",
                "target": self.target,
                "connected": self._connected,
                "last_error": self._last_error,
                "frames": self._seq,
                "reconnects": self._reconnects,
            }

    def close(self) -> None:
        """Stop the grabber and release the device."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=self.read_timeout_s + self.max_backoff_s)
