"""NV12 frames (the RDK's camera output) to BGR, and stacked stereo frames split into their two views."""

from __future__ import annotations

import cv2
import numpy as np

STACK_LAYOUTS = ("tb", "sbs")


def nv12_to_bgr(data: bytes | bytearray | memoryview | np.ndarray, width: int, height: int) -> np.ndarray:
    """Decode one NV12 frame (a full-size Y plane, then interleaved U,V at half size) to BGR uint8.

    ``data`` is the frame's bytes (``libsrcampy``'s ``get_img``) or a uint8 array of them; ValueError when the
    size is odd or the data does not hold ``width * height * 3 / 2`` bytes.
    """
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"NV12 needs an even, positive width and height, got {width}x{height}")
    buf = np.asarray(data, np.uint8).ravel() if isinstance(data, np.ndarray) else np.frombuffer(data, np.uint8)
    expected = width * height * 3 // 2
    if buf.size != expected:
        raise ValueError(f"an NV12 {width}x{height} frame has {expected} bytes, got {buf.size}")
    return cv2.cvtColor(buf.reshape(height * 3 // 2, width), cv2.COLOR_YUV2BGR_NV12)


def split_stacked(image: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """``(left, right)`` of a frame holding both views: ``tb`` left above right, ``sbs`` left beside right.

    ValueError for an unknown layout or a frame that does not split evenly.
    """
    h, w = image.shape[:2]
    if layout == "tb":
        if h % 2:
            raise ValueError(f"a top/bottom stereo frame needs an even height, got {w}x{h}")
        return np.ascontiguousarray(image[: h // 2]), np.ascontiguousarray(image[h // 2 :])
    if layout == "sbs":
        if w % 2:
            raise ValueError(f"a side-by-side stereo frame needs an even width, got {w}x{h}")
        return np.ascontiguousarray(image[:, : w // 2]), np.ascontiguousarray(image[:, w // 2 :])
    raise ValueError(f"unknown stereo layout {layout!r}; use one of {', '.join(STACK_LAYOUTS)}")
