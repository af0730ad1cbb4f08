"""ROS 2 ``sensor_msgs/Image`` messages to numpy, and depth/image pairing by header stamp: no rclpy needed.

Anything with the message's fields works (``header.stamp.sec/nanosec``, ``height``, ``width``, ``encoding``,
``is_bigendian``, ``step``, ``data``), so the tests use plain objects. :class:`PairedFrames` is the whole
``ros2:`` camera except the subscription: it takes messages as they arrive, pairs depth with image by their
exact stamp (``hobot_stereonet`` gives its depth and its rectified left image the same one), and turns the
newest pair into a :class:`Frame` on ``read()``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import cv2
import numpy as np

from rdk_agent.camera.base import CameraError, Frame
from rdk_agent.camera.nv12 import nv12_to_bgr

Stamp = tuple[int, int]
_PIXEL = {  # encoding -> (channels, bytes per channel)
    "mono16": (1, 2),
    "16uc1": (1, 2),
    "mono8": (1, 1),
    "8uc1": (1, 1),
    "bgr8": (3, 1),
    "rgb8": (3, 1),
}
ENCODINGS = (*_PIXEL, "nv12")


def stamp_of(msg: Any) -> Stamp:
    """``(sec, nanosec)`` of a message's header."""
    return int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)


def _rows(msg: Any, rows: int, row_bytes: int) -> np.ndarray:
    """The message's data as ``rows`` x ``row_bytes`` uint8, dropping each row's padding (``step``)."""
    data = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, (bytes, bytearray)) else msg.data, np.uint8)
    step = int(msg.step)
    if step < row_bytes:
        raise ValueError(f"image step {step} is shorter than a row ({row_bytes} bytes for {msg.encoding})")
    if data.size < step * (rows - 1) + row_bytes:
        raise ValueError(
            f"image data holds {data.size} bytes, {msg.width}x{msg.height} {msg.encoding} needs {step * rows}"
        )
    if data.size < step * rows:  # the last row's padding may be left out
        data = np.concatenate([data, np.zeros(step * rows - data.size, np.uint8)])
    return data[: step * rows].reshape(rows, step)[:, :row_bytes]


def decode_image(msg: Any) -> np.ndarray:
    """The image of a ``sensor_msgs/Image``: uint16 (h, w) for mono16, uint8 (h, w) for mono8, BGR otherwise.

    Supports mono16/16UC1 (either byte order, ``is_bigendian``), mono8/8UC1, bgr8, rgb8 and nv12; honours
    ``step`` (row padding). ValueError for another encoding or data that does not fit the header.
    """
    enc = str(msg.encoding).lower()
    h, w = int(msg.height), int(msg.width)
    if h <= 0 or w <= 0:
        raise ValueError(f"image has no pixels ({w}x{h})")
    if enc == "nv12":
        return nv12_to_bgr(np.ascontiguousarray(_rows(msg, h * 3 // 2, w)), w, h)
    if enc not in _PIXEL:
        raise ValueError(f"unsupported image encoding {msg.encoding!r}; supported: {', '.join(ENCODINGS)}")
    channels, size = _PIXEL[enc]
    rows = _rows(msg, h, w * channels * size)
    if size == 2:
        dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
        return np.ascontiguousarray(rows).view(dtype).reshape(h, w).astype(np.uint16)
    image = np.ascontiguousarray(rows).reshape(h, w, channels) if channels == 3 else np.ascontiguousarray(rows)
    return np.ascontiguousarray(image[:, :, ::-1]) if enc == "rgb8" else image


class StampPairer:
    """Pairs depth and image messages with the same header stamp, whatever order they arrive in.

    Up to ``max_pending`` unpaired messages of each kind wait for their partner (the oldest is dropped past
    that); once a pair is made, waiting messages with older stamps are dropped, and so are later arrivals
    older than the last pair (stale).
    """

    KINDS = ("depth", "image")

    def __init__(self, max_pending: int = 8) -> None:
        self.max_pending = max_pending
        self._pending: dict[str, OrderedDict[Stamp, Any]] = {k: OrderedDict() for k in self.KINDS}
        self._last: Stamp | None = None
        self._lock = threading.Lock()
        self.dropped = 0

    def offer(self, kind: str, msg: Any) -> tuple[Any, Any] | None:
        """Add a ``depth`` or ``image`` message; returns ``(depth_msg, image_msg)`` when it completes a pair."""
        if kind not in self._pending:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        stamp = stamp_of(msg)
        other = self._pending["image" if kind == "depth" else "depth"]
        with self._lock:
            if self._last is not None and stamp <= self._last:
                self.dropped += 1
                return None
            partner = other.pop(stamp, None)
            if partner is None:
                mine = self._pending[kind]
                mine[stamp] = msg
                while len(mine) > self.max_pending:
                    mine.pop(min(mine))
                    self.dropped += 1
                return None
            self._last = stamp
            for queue in self._pending.values():
                for old in [s for s in queue if s < stamp]:
                    del queue[old]
                    self.dropped += 1
            return (msg, partner) if kind == "depth" else (partner, msg)


def frame_from_pair(depth_msg: Any, image_msg: Any) -> Frame:
    """A Frame of a paired depth (uint16 mm, 0 = invalid) and image; the image is resized to the depth's size."""
    depth = decode_image(depth_msg)
    if depth.dtype != np.uint16:
        raise ValueError(f"the depth topic must carry mono16 millimetres, got {depth_msg.encoding!r}")
    image = decode_image(image_msg)
    if image.ndim == 2:
        image = cv2.cvtColor(image if image.dtype == np.uint8 else (image >> 8).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    meta: dict = {"stamp": list(stamp_of(depth_msg)), "image_size": [image.shape[1], image.shape[0]]}
    if image.shape[:2] != depth.shape:
        image = cv2.resize(image, (depth.shape[1], depth.shape[0]), interpolation=cv2.INTER_AREA)
        meta["image_resized_to_depth"] = True
    sec, nanosec = stamp_of(depth_msg)
    return Frame(rgb=image, depth=depth, timestamp=sec + nanosec * 1e-9, meta=meta)


class PairedFrames:
    """The newest stamp-paired (depth, image) as Frames; ``offer`` from subscription callbacks, ``read`` anywhere."""

    def __init__(self, timeout_s: float = 2.0, max_pending: int = 8) -> None:
        self.timeout_s = timeout_s
        self.pairer = StampPairer(max_pending)
        self._cond = threading.Condition()
        self._latest: tuple[Any, Any] | None = None
        self._received_at = 0.0
        self.received = {"depth": 0, "image": 0}
        self.pairs = 0

    def offer(self, kind: str, msg: Any) -> None:
        """A message arrived (called from the subscription's thread)."""
        pair = self.pairer.offer(kind, msg)
        with self._cond:
            self.received[kind] += 1
            if pair is not None:
                self._latest, self._received_at = pair, time.monotonic()
                self.pairs += 1
                self._cond.notify_all()

    def read(self, waiting_for: str = "the depth and image topics") -> Frame:
        """The newest pair as a Frame, waiting up to ``timeout_s`` for one; CameraError when none is fresh."""
        deadline = time.monotonic() + self.timeout_s
        with self._cond:
            while self._latest is None or time.monotonic() - self._received_at > self.timeout_s:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CameraError(
                        f"no depth+image pair with matching stamps on {waiting_for} within {self.timeout_s:g} s "
                        f"(received {self.received['depth']} depth, {self.received['image']} image messages): "
                        "is the stereo node running? check with `ros2 topic hz`"
                    )
                self._cond.wait(left)
            depth_msg, image_msg = self._latest
        try:
            return frame_from_pair(depth_msg, image_msg)
        except ValueError as exc:
            raise CameraError(f"cannot decode the ROS image messages: {exc}") from None

    def status(self) -> dict:
        """Counters and the age of the newest pair."""
        with self._cond:
            age = None if self._latest is None else round(time.monotonic() - self._received_at, 3)
            return {
                "received": dict(self.received),
                "pairs": self.pairs,
                "dropped": self.pairer.dropped,
                "last_pair_age_s": age,
            }
