"""The ``rdk`` pair provider: the RDK X5's two MIPI sensors through D-Robotics' ``libsrcampy``, without ROS.

Per sensor: ``libsrcampy.Camera()``, ``open_cam(pipe_id, video_index, fps, width, height)`` (0 on success) and
``get_img(2, width, height)``, which returns one NV12 frame as bytes, or None after a timeout (D-Robotics'
"Camera object" documentation). ``hobot_vio`` exists only on the board, so it is imported when the provider is
built and nowhere else. These calls are the only untested lines: every byte after them goes through
:class:`NV12PairReader` and :func:`rdk_agent.camera.nv12.nv12_to_bgr`, which the tests run on rendered pairs.

The two sensors free-run: this path has no hardware sync, so a pair is two frames grabbed one after the other
(``describe()`` reports the last grab skew). Keep the part still while capturing, or use ``mipi_cam``'s
synchronised dual mode through ROS 2 (the ``ros2:`` source, or ``stereo:tb:`` on its combined frame).
``video_index`` is the sensor's host (-1: detect); ``/etc/board_config.json`` on the board lists them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from rdk_agent.camera.base import CameraError
from rdk_agent.camera.nv12 import nv12_to_bgr

Grab = Callable[[], "bytes | bytearray | memoryview | np.ndarray | None"]
MISSING_VIO = (
    "the 'rdk' stereo provider needs the RDK X5's hobot_vio (libsrcampy), which is not installed here; "
    "on a desktop use stereo:files:<folder> or stereo:tb:<folder>"
)


class NV12PairReader:
    """Grabs one NV12 frame from each of two free-running sensors and decodes both to BGR."""

    def __init__(self, grab_left: Grab, grab_right: Grab, width: int, height: int) -> None:
        self._grab = (grab_left, grab_right)
        self.width, self.height = int(width), int(height)
        self._lock = threading.Lock()
        self.pairs = 0
        self.timeouts = 0
        self.last_skew_ms: float | None = None
        self.last_error: str | None = None

    def read_pair(self) -> tuple[np.ndarray, np.ndarray, float]:
        """``(left_bgr, right_bgr, timestamp)``: the mean of the two grab times; CameraError on a timeout."""
        with self._lock:
            frames, stamps = [], []
            for side, grab in zip(("left", "right"), self._grab, strict=True):
                data = grab()
                stamps.append(time.time())
                if data is None:
                    self.timeouts += 1
                    self.last_error = f"the {side} MIPI camera gave no frame (get_img timed out)"
                    raise CameraError(self.last_error + ": check its cable and that no other process holds it")
                try:
                    frames.append(nv12_to_bgr(data, self.width, self.height))
                except ValueError as exc:
                    self.last_error = f"the {side} MIPI camera gave a bad frame: {exc}"
                    raise CameraError(self.last_error) from None
            self.pairs += 1
            self.last_skew_ms = round((stamps[1] - stamps[0]) * 1000, 2)
            self.last_error = None
            return frames[0], frames[1], (stamps[0] + stamps[1]) / 2

    def describe(self) -> dict:
        """Size, counters and the last grab skew."""
        return {
            "width": self.width,
            "height": self.height,
            "pairs": self.pairs,
            "timeouts": self.timeouts,
            "sync": "none (free-running sensors)",
            "last_skew_ms": self.last_skew_ms,
            "last_error": self.last_error,
        }


class RdkStereoPair:
    """Left and right MIPI sensors of the RDK X5 as a pair provider (``stereo:rdk[:WxH]``)."""

    def __init__(
        self,
        width: int = 1920,
        height: int = 1080,
        fps: int = 30,
        pipes: tuple[int, int] = (0, 1),
        hosts: tuple[int, int] = (-1, -1),
    ) -> None:
        try:
            from hobot_vio import libsrcampy  # type: ignore[import-not-found]
        except ImportError:
            raise CameraError(MISSING_VIO) from None
        self._cams: list = []
        for side, pipe, host in zip(("left", "right"), pipes, hosts, strict=True):
            cam = libsrcampy.Camera()
            if cam.open_cam(pipe, host, fps, width, height) != 0:
                self.close()
                raise CameraError(
                    f"cannot open the {side} MIPI camera (pipe {pipe}, host {host}) at {width}x{height}@{fps}: "
                    "check the ribbon cable, the sensor's supported sizes and /etc/board_config.json"
                )
            self._cams.append(cam)
        left, right = self._cams
        self._reader = NV12PairReader(
            lambda: left.get_img(2, width, height), lambda: right.get_img(2, width, height), width, height
        )
        self._where = {"pipes": list(pipes), "hosts": list(hosts), "fps": fps}

    def read_pair(self) -> tuple[np.ndarray, np.ndarray, float]:
        """The next pair (see :class:`NV12PairReader`)."""
        return self._reader.read_pair()

    def describe(self) -> dict:
        """Kind, sensors and the reader's figures."""
        return {"kind": "rdk", **self._where, **self._reader.describe()}

    def close(self) -> None:
        """Close both sensors."""
        while self._cams:
            self._cams.pop().close_cam()
