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


def _interpolation(contract: InputContract, src: tuple[int, int], dst: tuple[int, int], depth: bool) -> int:
    """OpenCV flag for resizing ``src`` (w, h) to ``dst``; ``auto``: area when shrinking, bilinear otherwise."""
    if depth:  # never blend readings with holes
        return cv2.INTER_NEAREST
    if contract.interpolation != "auto":
        return _INTERPOLATION[contract.interpolation]
    return cv2.INTER_AREA if dst[0] < src[0] and dst[1] < src[1] else cv2.INTER_LINEAR


def orient(array: np.ndarray, contract: InputContract) -> np.ndarray:
    """Turn a portrait image or depth map 90° clockwise when the contract asks for landscape."""
    if contract.orient == "landscape" and array.shape[0] > array.shape[1]:
        return cv2.rotate(array, cv2.ROTATE_90_CLOCKWISE)
    return array


def _resize(array: np.ndarray, contract: InputContract, pad_value) -> np.ndarray:
    array = orient(array, contract)
    h, w = array.shape[:2]
    depth = array.dtype == np.uint16
    if contract.resize == "stretch":
        size = (contract.width, contract.height)
        return cv2.resize(array, size, interpolation=_interpolation(contract, (w, h), size, depth))
    scale = min(contract.width / w, contract.height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(array, (nw, nh), interpolation=_interpolation(contract, (w, h), (nw, nh), depth))
    canvas = np.empty((contract.height, contract.width, *array.shape[2:]), dtype=array.dtype)
    canvas[...] = pad_value
    top, left = (contract.height - nh) // 2, (contract.width - nw) // 2
    canvas[top : top + nh, left : left + nw] = resized
    return canvas


def fit_image(image_bgr: np.ndarray, contract: InputContract) -> np.ndarray:
    """The contract's geometry and colour order on a uint8 image: HxWx3 uint8, before normalisation.

    Letterbox borders take the mean colour, so they normalise to zero.
    """
    image = to_bgr(image_bgr)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if contract.colour_order == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    pad = np.clip(np.asarray(contract.mean[:3], dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return _resize(image, contract, pad)


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
    resized = fit_image(image, contract)
    mean = np.asarray(contract.mean, dtype=np.float32)
    std = np.asarray(contract.std, dtype=np.float32)
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
