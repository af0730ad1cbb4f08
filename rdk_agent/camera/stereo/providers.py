"""Left/right pair providers behind the ``stereo:`` source: raw (unrectified) BGR pairs at the sensor size.

* :class:`FilePairs`: a folder of ``<stem>_left.<ext>`` + ``<stem>_right.<ext>`` files, or ``left/`` and
  ``right/`` subfolders holding the same names; cycled in name order, rescanned at every wrap (stereo replay).
* :class:`StackedPairs`: one frame holding both views, top/bottom (``tb``: left above right, as ``mipi_cam``'s
  combined output) or side by side (``sbs``: left on the left), from a folder of images or an OpenCV device.
* the ``rdk`` provider is ``rdk_agent.camera.stereo.rdk_provider.RdkStereoPair`` (libsrcampy, imported lazily).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from rdk_agent.camera.base import CameraError
from rdk_agent.camera.replay import IMAGE_SUFFIXES

LAYOUTS = ("tb", "sbs")


class PairProvider(Protocol):
    """A source of raw stereo pairs."""

    def read_pair(self) -> tuple[np.ndarray, np.ndarray, float]:
        """``(left_bgr, right_bgr, timestamp)``; CameraError when no pair can be had."""
        ...

    def describe(self) -> dict:
        """JSON-able description (kind, where the pairs come from, health)."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CameraError(f"cannot read image {path}")
    return image


class _Cycle:
    """Name-ordered cycling over a folder's entries, rescanned at every wrap and after a failure."""

    def __init__(self, folder: Path, scan, what: str) -> None:
        self.folder = folder
        self._scan = scan
        self._what = what
        self._lock = threading.Lock()
        self._items: list = []
        self._pos = 0
        self.last: str | None = None
        self.last_error: str | None = None
        self.count = 0
        if not folder.is_dir():
            raise CameraError(f"stereo folder {folder} does not exist; create it or fix the camera spec")
        self.rescan()
        if not self._items:
            raise CameraError(f"stereo folder {folder} holds no {what}")

    def rescan(self) -> None:
        try:
            self._items = self._scan()
        except OSError:
            self._items = []
        self._pos = 0

    def next(self, load):
        """``load(item)`` for the next item; CameraError (and a rescan) when that fails."""
        with self._lock:
            if self._pos >= len(self._items):
                self.rescan()
            if not self._items:
                self.last_error = f"no {self._what} in {self.folder}"
                raise CameraError(self.last_error)
            item = self._items[self._pos]
            self._pos += 1
            try:
                out = load(item)
            except CameraError as exc:
                self.last_error = str(exc)
                self.rescan()
                raise
            self.last_error, self.count = None, self.count + 1
            self.last = item[0].name if isinstance(item, tuple) else item.name
            return out

    def describe(self) -> dict:
        return {
            "folder": str(self.folder),
            "items": len(self._items),
            "last": self.last,
            "frames": self.count,
            "connected": self.last_error is None,
            "last_error": self.last_error,
        }


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


class FilePairs:
    """Stereo replay from a folder; see the module docstring."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._cycle = _Cycle(self.folder, self._scan, "stereo pairs (<name>_left/_right images or left/ right/)")

    def _scan(self) -> list[tuple[Path, Path]]:
        folder = self.folder
        left_dir, right_dir = folder / "left", folder / "right"
        if left_dir.is_dir() and right_dir.is_dir():
            rights = {p.name: p for p in _images(right_dir)}
            return [(p, rights[p.name]) for p in _images(left_dir) if p.name in rights]
        files = _images(folder)
        by_stem = {p.stem: p for p in files}
        pairs = []
        for p in files:
            if p.stem.endswith("_left"):
                right = by_stem.get(p.stem[: -len("_left")] + "_right")
                if right is not None:
                    pairs.append((p, right))
        return pairs

    def read_pair(self) -> tuple[np.ndarray, np.ndarray, float]:
        """The next pair in name order."""
        left, right = self._cycle.next(lambda item: (_read_image(item[0]), _read_image(item[1])))
        if left.shape != right.shape:
            raise CameraError(
                f"pair {self._cycle.last}: left {left.shape[1::-1]} and right {right.shape[1::-1]} differ"
            )
        return left, right, time.time()

    def describe(self) -> dict:
        """Folder, pair count, last pair, health."""
        return {"kind": "files", **self._cycle.describe()}

    def close(self) -> None:
        """Nothing to release."""


class StackedPairs:
    """Both views in one frame (``layout`` tb or sbs) from a folder of images or ``opencv:<index|device>``."""

    def __init__(self, layout: str, target: str) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"stacked layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.layout = layout
        self.target = target
        self._camera = None
        self._cycle: _Cycle | None = None
        if target.startswith("opencv:"):
            from rdk_agent.camera.opencv_source import OpenCVCamera

            device = target[len("opencv:") :].strip()
            if not device:
                raise ValueError("stacked source 'opencv:' needs an index or a device, e.g. opencv:0")
            self._camera = OpenCVCamera(device)
        else:
            folder = Path(target)
            self._cycle = _Cycle(folder, lambda: _images(folder), "stacked stereo images")

    def read_pair(self) -> tuple[np.ndarray, np.ndarray, float]:
        """The next frame, split into its two views."""
        from rdk_agent.camera.nv12 import split_stacked

        if self._camera is not None:
            frame = self._camera.read()
            image, stamp = frame.rgb, frame.timestamp
        else:
            assert self._cycle is not None
            image, stamp = self._cycle.next(_read_image), time.time()
        try:
            left, right = split_stacked(image, self.layout)
        except ValueError as exc:
            raise CameraError(str(exc)) from None
        return left, right, stamp

    def describe(self) -> dict:
        """Layout, where the frames come from, health."""
        inner = self._camera.status() if self._camera is not None else self._cycle.describe()  # type: ignore[union-attr]
        inner.pop("kind", None)
        return {"kind": "stacked", "layout": self.layout, "target": self.target, **inner}

    def close(self) -> None:
        """Release the OpenCV device, if any."""
        if self._camera is not None:
            self._camera.close()
