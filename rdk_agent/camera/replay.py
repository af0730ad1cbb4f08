"""ReplayCamera: cycles the images of a folder, sorted by name, with optional depth next to each.

Depth for ``name.png`` comes from ``name_depth.npy`` (any numeric dtype, millimetres, NaN = no reading)
or ``name_depth.png`` (16-bit, millimetres). The folder is rescanned at every wrap and after a failure,
so images added or a folder that disappears and comes back are picked up without a restart.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np

from rdk_agent.camera.base import CameraError, CameraSource, Frame

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
DEPTH_SUFFIX = "_depth"


class ReplayCamera(CameraSource):
    """Frames from the images of ``folder``, in name order, looping."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise CameraError(f"replay folder {self.folder} does not exist; create it or fix the camera spec")
        self._lock = threading.Lock()
        self._files: list[Path] = []
        self._pos = 0
        self._last_error: str | None = None
        self._frames = 0
        self._rescan()
        if not self._files:
            raise CameraError(f"replay folder {self.folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")

    def _rescan(self) -> None:
        try:
            entries = sorted(self.folder.iterdir())
        except OSError:
            entries = []
        self._files = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith(DEPTH_SUFFIX)]
        self._pos = 0

    def read(self) -> Frame:
        """The next image of the folder with its depth, if any."""
        with self._lock:
            if self._pos >= len(self._files):
                self._rescan()
            if not self._files:
                self._last_error = f"no images in {self.folder}"
                raise CameraError(self._last_error)
            path = self._files[self._pos]
            self._pos += 1
            try:
                frame = _load(path)
            except CameraError as exc:
                self._last_error = str(exc)
                self._rescan()
                raise
            self._last_error = None
            self._frames += 1
            return frame

    def status(self) -> dict:
        """Spec, image count, health."""
        return {
            "kind": "replay",
            "folder": str(self.folder),
            "images": len(self._files),
            "connected": self._last_error is None,
            "last_error": self._last_error,
            "frames": self._frames,
        }

    def close(self) -> None:
        """Nothing to release."""


def _load(path: Path) -> Frame:
    rgb = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if rgb is None:
        raise CameraError(f"cannot read image {path}")
    depth = _load_depth(path, rgb.shape[:2])
    return Frame(rgb=rgb, depth=depth, timestamp=time.time(), meta={"source": "replay", "file": path.name})


def _load_depth(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    npy = path.with_name(path.stem + DEPTH_SUFFIX + ".npy")
    png = path.with_name(path.stem + DEPTH_SUFFIX + ".png")
    if npy.exists():
        try:
            raw = np.load(npy, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CameraError(f"cannot read depth {npy}: {exc}") from None
        depth = np.clip(np.nan_to_num(raw.astype(np.float64), nan=0.0), 0, 65535).astype(np.uint16)
    elif png.exists():
        depth = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        if depth is None or depth.dtype != np.uint16 or depth.ndim != 2:
            raise CameraError(f"depth {png} must be a single-channel 16-bit PNG in millimetres")
    else:
        return None
    if depth.shape != shape:
        raise CameraError(f"depth of {path.name} is {depth.shape[::-1]}, image is {shape[::-1]}")
    return depth
