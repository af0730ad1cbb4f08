"""Heat maps from a classifier's class activation maps, in the frame's own pixel coordinates.

A model whose card names a ``cam`` output (``extra_outputs["cam"]``, N x K x h x w) gives one map per
class over its input tensor. The agent picks the predicted class's map, min-max normalises it, finds
its peak cell and maps everything back through the shared preprocessing: the letterbox (or stretch)
onto the input tensor and the ``landscape`` turn of a portrait frame are undone, so the peak, its cell
and the overlay PNG line up with the frame the camera gave.

Where a cell lies on the input tensor is the card's ``provenance["heatmap"]["grid"]`` when the trainer
wrote one (``stride`` and ``offset``, [y, x]: cell ``(i, j)`` is centred on input coordinate
``offset + stride · (i, j)``, see ``desktop_trainer.models.cam.cam_grid``); otherwise the cells split
the input evenly, as an upsampled CAM does.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import cv2
import numpy as np

from shared_schema import InputContract

OVERLAY_SIDE = 64  # longest side of the overlay PNG: a few kB, smoothly upscaled by the browser
_JET = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0]  # BGR per level


@dataclass(frozen=True)
class Grid:
    """Cell ``(i, j)`` of an h x w map is centred on input pixel coordinate ``offset + stride · (i, j)`` ([y, x])."""

    stride: tuple[float, float]
    offset: tuple[float, float]

    @classmethod
    def even(cls, shape: tuple[int, int], contract: InputContract) -> Grid:
        """Cells that split the input evenly."""
        sy, sx = contract.height / shape[0], contract.width / shape[1]
        return cls((sy, sx), (sy / 2, sx / 2))

    @classmethod
    def from_card(cls, provenance: dict, shape: tuple[int, int], contract: InputContract, key: str = "grid") -> Grid:
        """The trainer's grid (``heatmap.<key>``) from a card's provenance, else :meth:`even`."""
        heatmap = provenance.get("heatmap") if isinstance(provenance, dict) else None
        grid = heatmap.get(key) if isinstance(heatmap, dict) else None
        if not isinstance(grid, dict):
            return cls.even(shape, contract)
        try:
            stride, offset = grid["stride"], grid["offset"]
            return cls((float(stride[0]), float(stride[1])), (float(offset[0]), float(offset[1])))
        except (TypeError, KeyError, IndexError, ValueError):
            return cls.even(shape, contract)

    def cell(self, i: int, j: int) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of cell ``(i, j)`` on the input tensor."""
        (sy, sx), (oy, ox) = self.stride, self.offset
        return ox + sx * (j - 0.5), oy + sy * (i - 0.5), ox + sx * (j + 0.5), oy + sy * (i + 0.5)


@dataclass(frozen=True)
class FrameGeometry:
    """How a frame of ``height`` x ``width`` lands on the model's input tensor (see shared_schema.preprocess)."""

    height: int
    width: int
    contract: InputContract

    @property
    def turned(self) -> bool:
        """Whether preprocessing turns the frame 90° clockwise (portrait frame, landscape contract)."""
        return self.contract.orient == "landscape" and self.height > self.width

    def placement(self) -> tuple[float, float, float, float]:
        """(left, top, scale_x, scale_y): input pixel = left + scale_x · turned-frame pixel (and y alike)."""
        c = self.contract
        w, h = (self.height, self.width) if self.turned else (self.width, self.height)
        if c.resize == "stretch":
            return 0.0, 0.0, c.width / w, c.height / h
        scale = min(c.width / w, c.height / h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        return float((c.width - nw) // 2), float((c.height - nh) // 2), nw / w, nh / h

    def to_frame(self, x: float, y: float) -> tuple[float, float]:
        """An input-tensor point back in frame pixels (clamped to the frame)."""
        left, top, sx, sy = self.placement()
        u, v = (x - left) / sx, (y - top) / sy  # in the turned frame
        if self.turned:  # clockwise turn: turned (u, v) is frame (v, height - u)
            u, v = v, self.height - u
        return min(max(u, 0.0), float(self.width)), min(max(v, 0.0), float(self.height))


def class_map(cam: np.ndarray, index: int) -> np.ndarray:
    """Class ``index``'s map from a K x h x w (or 1 x K x h x w) cam, min-max normalised to [0, 1]."""
    maps = np.asarray(cam, dtype=np.float32)
    if maps.ndim == 4:
        maps = maps[0]
    if maps.ndim != 3 or not 0 <= index < maps.shape[0]:
        raise ValueError(f"cam of shape {cam.shape} has no map for class {index}")
    m = maps[index]
    if not np.all(np.isfinite(m)):
        raise ValueError("cam is not finite")
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def peak_cell(norm: np.ndarray, geometry: FrameGeometry, grid: Grid | None = None) -> dict:
    """The map's peak cell as a frame rectangle (cut to the frame) and its centre: ``peak``, ``cell``, ``index``."""
    grid = grid or Grid.even(norm.shape, geometry.contract)
    i, j = np.unravel_index(int(np.argmax(norm)), norm.shape)
    x0, y0, x1, y1 = grid.cell(int(i), int(j))
    corners = [geometry.to_frame(x, y) for x in (x0, x1) for y in (y0, y1)]
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    fx0, fy0, fx1, fy1 = min(xs), min(ys), max(xs), max(ys)
    return {
        "peak": {"x": round((fx0 + fx1) / 2, 1), "y": round((fy0 + fy1) / 2, 1)},
        "cell": {"x": round(fx0, 1), "y": round(fy0, 1), "width": round(fx1 - fx0, 1), "height": round(fy1 - fy0, 1)},
        "index": [int(i), int(j)],
    }


def frame_map(
    norm: np.ndarray, geometry: FrameGeometry, grid: Grid | None = None, side: int = OVERLAY_SIDE
) -> np.ndarray:
    """The normalised map resampled onto the frame (letterbox cut off, turn undone), longest side ``side``.

    One affine warp: overlay pixel -> frame point -> turned frame -> input tensor -> map index.
    """
    grid = grid or Grid.even(norm.shape, geometry.contract)
    fh, fw = geometry.height, geometry.width
    scale = side / max(fw, fh)
    size = (max(1, round(fw * scale)), max(1, round(fh * scale)))
    # overlay pixel (u, v) -> frame point ((u + 0.5) * fw / out_w, (v + 0.5) * fh / out_h)
    kx, ky = fw / size[0], fh / size[1]
    to_frame = np.array([[kx, 0, 0.5 * kx], [0, ky, 0.5 * ky], [0, 0, 1]])
    # frame point (x, y) -> turned frame (u', v') = (fh - y, x) when preprocessing turned it clockwise
    to_turned = np.array([[0, -1, fh], [1, 0, 0], [0, 0, 1]]) if geometry.turned else np.eye(3)
    left, top, sx, sy = geometry.placement()
    to_input = np.array([[sx, 0, left], [0, sy, top], [0, 0, 1]])
    (gy, gx), (oy, ox) = grid.stride, grid.offset
    to_map = np.array([[1 / gx, 0, -ox / gx], [0, 1 / gy, -oy / gy], [0, 0, 1]])
    matrix = (to_map @ to_input @ to_turned @ to_frame)[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(norm, matrix, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)


def overlay_png(small: np.ndarray) -> str:
    """Base64 PNG, BGRA: the JET colour of each value with an alpha that grows with it (cold areas clear)."""
    grey = np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8)
    colour = _JET[grey]
    alpha = np.clip(small * 200.0, 0, 200).astype(np.uint8)
    ok, png = cv2.imencode(".png", np.dstack([colour, alpha]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("cannot encode the heat map")
    return base64.b64encode(png.tobytes()).decode("ascii")


def fuse(fine: np.ndarray, coarse: np.ndarray, fine_grid: Grid, coarse_grid: Grid) -> np.ndarray:
    """The fine map times the coarse one resampled onto the fine cells, min-max normalised (both in [0, 1])."""
    (fy, fx), (foy, fox) = fine_grid.stride, fine_grid.offset
    (cy, cx), (coy, cox) = coarse_grid.stride, coarse_grid.offset
    # fine cell (i, j) sits at input offset + stride * (i, j): coarse index (that - coarse offset) / coarse stride
    to_coarse = np.array([[fx / cx, 0, (fox - cox) / cx], [0, fy / cy, (foy - coy) / cy]], np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    size = (fine.shape[1], fine.shape[0])
    on_fine = cv2.warpAffine(coarse, to_coarse, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    fused = fine * on_fine
    lo, hi = float(fused.min()), float(fused.max())
    return (fused - lo) / (hi - lo) if hi > lo else np.zeros_like(fused)


def build_heatmap(
    cam: np.ndarray,
    index: int,
    label: str,
    frame_shape: tuple[int, ...],
    contract: InputContract,
    provenance: dict | None = None,
    fine: np.ndarray | None = None,
) -> dict:
    """The JSON heat map of class ``index`` (``label``) for a frame of ``frame_shape`` (H, W, ...).

    ``shape`` is the map's own [h, w]; ``peak`` and ``cell`` are frame pixels (the peak cell's centre
    and rectangle; ``index`` its [row, column] in the map); ``png`` a small base64 overlay covering the
    whole frame. ``provenance`` is the card's (its ``heatmap.grid`` places the cells). With ``fine``
    class maps (the ``cam_fine`` output) the map is :func:`fuse` of the two, at the fine resolution
    (``source`` says which). ValueError when the cam cannot give a map.
    """
    provenance = provenance or {}
    norm = class_map(cam, index)
    grid = Grid.from_card(provenance, norm.shape, contract)
    source = "cam"
    if fine is not None:
        fine_norm = class_map(fine, index)
        fine_grid = Grid.from_card(provenance, fine_norm.shape, contract, "fine_grid")
        norm, grid, source = fuse(fine_norm, norm, fine_grid, grid), fine_grid, "cam_fine x cam"
    geometry = FrameGeometry(int(frame_shape[0]), int(frame_shape[1]), contract)
    return {
        "label": label,
        "source": source,
        "shape": [int(norm.shape[0]), int(norm.shape[1])],
        **peak_cell(norm, geometry, grid),
        "png": overlay_png(frame_map(norm, geometry, grid)),
    }
