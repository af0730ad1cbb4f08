"""Image encoding and checked decoding of uploads.

RGB is stored as PNG: lossless, so training sees exactly the pixels the camera gave (small pores and
droplets are what JPEG artefacts blur), and a re-encode never changes a file's sha256. Depth is a
16-bit single-channel PNG in millimetres (0 = no reading). Uploads are checked before decoding:
PNG or JPEG only, dimensions read from the header and refused above the pixel limit (decompression
bombs), and truncated files refused (OpenCV would fill a truncated JPEG with grey and say nothing).
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
JPEG_SOI = b"\xff\xd8"
PNG_LEVEL = 1  # fast on a Cortex-A55; higher levels save little on noisy camera frames
THUMB_MAX_SIDE = 240


class ImageRejected(ValueError):
    """An upload is not an acceptable image; ``code`` and ``status`` describe the HTTP answer."""

    def __init__(self, message: str, code: str = "bad_image", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of an 8-bit BGR or 16-bit single-channel array."""
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def thumbnail_jpeg(image: np.ndarray) -> bytes:
    """A small JPEG for the gallery."""
    h, w = image.shape[:2]
    scale = THUMB_MAX_SIDE / max(h, w)
    if scale < 1:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def image_size(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` from a PNG or JPEG header, without decoding pixels."""
    if data.startswith(PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageRejected("PNG header is truncated or malformed")
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data.startswith(JPEG_SOI):
        return ("jpeg", *_jpeg_size(data))
    raise ImageRejected("not a PNG or JPEG image", code="unsupported_image")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ImageRejected("JPEG marker stream is malformed")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    raise ImageRejected("JPEG has no frame header (truncated?)")


def check_complete(fmt: str, data: bytes) -> None:
    """Refuse a file cut short: PNG must end with IEND, JPEG with the EOI marker."""
    if fmt == "png" and not data.endswith(PNG_IEND):
        raise ImageRejected("PNG is truncated (no IEND chunk at the end)")
    if fmt == "jpeg" and not data.rstrip(b"\x00\r\n").endswith(b"\xff\xd9"):
        raise ImageRejected("JPEG is truncated (no end-of-image marker)")


def decode_rgb_upload(data: bytes, max_pixels: int) -> np.ndarray:
    """Checked decode of an uploaded PNG/JPEG into an HxWx3 uint8 BGR array."""
    fmt, width, height = _checked_header(data, max_pixels)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != (height, width):
        raise ImageRejected(f"{fmt.upper()} image could not be decoded")
    return image


def decode_depth_upload(data: bytes, max_pixels: int) -> np.ndarray:
    """Checked decode of an uploaded depth map: a single-channel 16-bit PNG in millimetres."""
    fmt, width, height = _checked_header(data, max_pixels)
    depth = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if fmt == "png" else None
    if depth is None or depth.ndim != 2 or depth.dtype != np.uint16 or depth.shape != (height, width):
        raise ImageRejected("depth must be a single-channel 16-bit PNG in millimetres", code="bad_depth")
    return depth


def _checked_header(data: bytes, max_pixels: int) -> tuple[str, int, int]:
    fmt, width, height = image_size(data)
    if width <= 0 or height <= 0:
        raise ImageRejected(f"image has invalid dimensions {width}x{height}")
    if width * height > max_pixels:
        raise ImageRejected(
            f"image is {width}x{height} = {width * height} pixels, above the limit of {max_pixels} (max_image_pixels)",
            code="image_too_large",
            status=413,
        )
    check_complete(fmt, data)
    return fmt, width, height
