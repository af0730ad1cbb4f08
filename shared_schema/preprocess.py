"""The one implementation of the inference-time input contract, shared by trainer and agent."""

from __future__ import annotations

import cv2
import numpy as np

from shared_schema.model_card import InputContract

_INTERPOLATION = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}


def decode_image(data: bytes) -> np.ndarray:
    """Decode encoded image bytes to an HxWx3 uint8 BGR array; ValueError if not an image."""
    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if image is None:
        raise ValueError("not a decodable image (JPEG, PNG, BMP, ... expected)")
    return image


def decode_depth(data: bytes) -> np.ndarray:
    """Decode a 16-bit PNG depth map (millimetres) to an HxW uint16 array."""
    buf = np.frombuffer(data, dtype=np.uint8)
    depth = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if depth is None or depth.ndim != 2 or depth.dtype != np.uint16:
        raise ValueError("depth must be a single-channel 16-bit PNG in millimetres")
    return depth


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Grey or BGRA to 3-channel BGR; BGR passes through."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _resize(array: np.ndarray, contract: InputContract, pad_value) -> np.ndarray:
    interp = _INTERPOLATION[contract.interpolation]
    if array.dtype == np.uint16:  # depth: never blend readings with holes
        interp = cv2.INTER_NEAREST
    if contract.resize == "stretch":
        return cv2.resize(array, (contract.width, contract.height), interpolation=interp)
    h, w = array.shape[:2]
    scale = min(contract.width / w, contract.height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(array, (nw, nh), interpolation=interp)
    canvas = np.empty((contract.height, contract.width, *array.shape[2:]), dtype=array.dtype)
    canvas[...] = pad_value
    top, left = (contract.height - nh) // 2, (contract.width - nw) // 2
    canvas[top : top + nh, left : left + nw] = resized
    return canvas


def depth_channel(depth: np.ndarray, contract: InputContract) -> np.ndarray:
    """Map a uint16 millimetre depth map (already resized) to the float channel of the contract."""
    d = depth.astype(np.float32)
    valid = d > 0
    if contract.depth_mode == "median_relative":
        ref = float(np.median(d[valid])) if valid.any() else 0.0
        d = np.where(valid, ref - d, 0.0)  # positive = closer to the camera (bead above plate)
    return d * np.float32(contract.depth_scale)


def preprocess(image_bgr: np.ndarray, contract: InputContract, depth: np.ndarray | None = None) -> np.ndarray:
    """Image (HxWx3 uint8 BGR, as OpenCV decodes) and optional depth -> CxHxW float32 tensor."""
    image = to_bgr(image_bgr)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if contract.colour_order == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    mean = np.asarray(contract.mean, dtype=np.float32)
    std = np.asarray(contract.std, dtype=np.float32)
    pad = np.clip(mean[:3] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    resized = _resize(image, contract, pad)
    x = resized.astype(np.float32) * np.float32(1.0 / 255.0)
    if contract.channels == "rgbd":
        if depth is None:
            depth = np.zeros(image.shape[:2], dtype=np.uint16)
        if depth.shape[:2] != image.shape[:2]:
            raise ValueError(f"depth {depth.shape[:2]} does not match image {image.shape[:2]}")
        d = depth_channel(_resize(depth.astype(np.uint16), contract, 0), contract)
        x = np.concatenate([x, d[..., None]], axis=2)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def preprocess_batch(
    images: list[np.ndarray], contract: InputContract, depths: list[np.ndarray | None] | None = None
) -> np.ndarray:
    """Stack :func:`preprocess` over a list into an NxCxHxW float32 batch."""
    depths = depths if depths is not None else [None] * len(images)
    return np.stack([preprocess(img, contract, d) for img, d in zip(images, depths, strict=True)])
