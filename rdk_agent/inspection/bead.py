"""Weld bead geometry for the rules: segmentation, axis, width, uniformity, coverage gaps, height and grooves.

All OpenCV and numpy. The image is first flattened by its plate brightness (a morphological opening of a
downscaled copy, which removes the bright bead) so that lighting gradients and glare do not move thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from rdk_agent.inspection.rubric import Rubric


@dataclass
class Bead:
    """The segmented bead: pixel masks, axis and measures in pixels (``found`` False when there is none)."""

    found: bool
    norm: np.ndarray  # grey / local plate brightness (plate ~1, bead > 1)
    mask: np.ndarray  # uint8 0/255, every bead piece on the axis, holes filled
    width_px: float = 0.0
    length_px: float = 0.0
    uniformity: float = 0.0
    angle_deg: float = 0.0
    gap_px: float = 0.0
    pieces: int = 0
    origin: tuple[float, float] = (0.0, 0.0)
    direction: tuple[float, float] = (1.0, 0.0)


def odd(n: float) -> int:
    return max(3, int(n) // 2 * 2 + 1)


def plate_normalised(gray: np.ndarray, bead_max_px: float) -> np.ndarray:
    """``gray`` divided by the plate brightness around it, estimated without the (narrower) bright bead."""
    h, w = gray.shape
    f = 8 if min(h, w) >= 64 else 1
    small = cv2.resize(gray, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (odd(1.4 * bead_max_px / f),) * 2)
    background = cv2.morphologyEx(small, cv2.MORPH_OPEN, kernel, borderType=cv2.BORDER_REPLICATE)
    background = cv2.GaussianBlur(background.astype(np.float32), (0, 0), 1.5)
    background = cv2.resize(background, (w, h), interpolation=cv2.INTER_LINEAR)
    return gray.astype(np.float32) / np.maximum(background, 4.0)


def segment(gray: np.ndarray, rubric: Rubric) -> Bead:
    """Find the bead in an 8-bit grey image and measure it along its axis."""
    px = rubric.mm_per_px
    bead_max_px = (rubric.target_width_mm + rubric.width_tolerance_mm) / px
    norm = plate_normalised(gray, bead_max_px)
    smooth = cv2.GaussianBlur(norm, (0, 0), max(1.0, 0.25 / px))
    scaled = np.clip((smooth - 0.5) * 170, 0, 255).astype(np.uint8)  # 0.5 .. 2.0 -> 0 .. 255
    otsu, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    level = max(rubric.bead_contrast, otsu / 170 + 0.5)
    mask = (smooth > level).astype(np.uint8) * 255
    return _from_mask(mask, norm, rubric)


def _from_mask(mask: np.ndarray, norm: np.ndarray, rubric: Rubric) -> Bead:
    """Clean a candidate mask, keep the largest piece and the pieces on its axis, and measure them."""
    px = rubric.mm_per_px
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (odd(0.8 / px),) * 2)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, k)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, k)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    min_area = (1.5 / px) * (3.0 / px)
    contours = [c for c in contours if cv2.contourArea(c) >= min_area]
    if not contours:
        return Bead(found=False, norm=norm, mask=np.zeros_like(mask))
    largest = max(contours, key=cv2.contourArea)
    area = cv2.contourArea(largest)
    (_, _), (rw, rh), _ = cv2.minAreaRect(largest)
    hull_area = cv2.contourArea(cv2.convexHull(largest))
    vx, vy, x0, y0 = (float(v) for v in cv2.fitLine(largest, cv2.DIST_L2, 0, 0.01, 0.01).ravel())
    width = min(rw, rh)
    # other pieces of a broken bead: big enough and centred on the largest piece's axis
    pieces = [largest]
    for c in contours:
        if c is largest or cv2.contourArea(c) < 0.05 * area:
            continue
        m = cv2.moments(c)
        cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
        if abs((cx - x0) * vy - (cy - y0) * vx) < max(width, 2.0):
            pieces.append(c)
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, pieces, -1, 255, cv2.FILLED)
    bead = Bead(
        found=True,
        norm=norm,
        mask=filled,
        width_px=float(width),
        length_px=float(max(rw, rh)),
        uniformity=float(area / hull_area) if hull_area > 0 else 0.0,
        angle_deg=math.degrees(math.atan2(vy, vx)) % 180,
        pieces=len(pieces),
        origin=(x0, y0),
        direction=(vx, vy),
    )
    bead.gap_px = _longest_gap(bead, mask.shape)
    return bead


def refine_with_depth(bead: Bead, depth: np.ndarray, plate: np.ndarray, rubric: Rubric) -> Bead:
    """Add to the bead what stands out of the plate near its axis: flanks in shadow are invisible in brightness.

    A pixel joins when its (5x5 averaged) height above the plate plane exceeds ``bead_min_height_mm``.
    """
    h, w = depth.shape
    xs, ys = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)[:, None]
    height = (xs * np.float32(plate[0]) + ys * np.float32(plate[1]) + np.float32(plate[2])) - depth
    height[depth == 0] = 0
    height = cv2.blur(height, (5, 5))
    (x0, y0), (vx, vy) = bead.origin, bead.direction
    across = np.abs((ys - np.float32(y0)) * np.float32(vx) - (xs - np.float32(x0)) * np.float32(vy))
    reach = (rubric.target_width_mm + rubric.width_tolerance_mm) / rubric.mm_per_px / 2
    raised = (height > rubric.bead_min_height_mm) & (across < reach)
    refined = _from_mask(bead.mask | (raised.astype(np.uint8) * 255), bead.norm, rubric)
    return refined if refined.found else bead


def axis_coords(bead: Bead, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(t along the axis, d across it) of pixel coordinates."""
    (x0, y0), (vx, vy) = bead.origin, bead.direction
    dx, dy = xs - x0, ys - y0
    return dx * vx + dy * vy, dy * vx - dx * vy


def _visible_span(bead: Bead, shape: tuple[int, int]) -> tuple[float, float]:
    """The t range over which the axis line lies inside the image (slab clipping)."""
    (x0, y0), (vx, vy) = bead.origin, bead.direction
    lo, hi = -math.inf, math.inf
    for p, v, size in ((x0, vx, shape[1]), (y0, vy, shape[0])):
        if abs(v) < 1e-9:
            continue
        a, b = (0 - p) / v, (size - 1 - p) / v
        lo, hi = max(lo, min(a, b)), min(hi, max(a, b))
    return lo, hi


def _longest_gap(bead: Bead, shape: tuple[int, int]) -> float:
    """Longest stretch (px) of the visible axis, away from the image border, that no bead pixel covers."""
    ys, xs = np.nonzero(bead.mask[::2, ::2])
    t, _ = axis_coords(bead, xs * 2.0, ys * 2.0)
    lo, hi = _visible_span(bead, shape[:2])
    margin = bead.width_px / 2 + 2
    lo, hi = lo + margin, hi - margin
    if hi - lo < 4:
        return 0.0
    bins = np.zeros(int(hi - lo) + 1, bool)
    idx = np.round(t - lo).astype(np.int64)
    bins[idx[(idx >= 0) & (idx < bins.size)]] = True
    return float(_longest_run(~bins))


def _longest_run(flags: np.ndarray) -> int:
    """Length of the longest run of True."""
    if not flags.any():
        return 0
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max())


def fit_plate(depth: np.ndarray, bead: Bead, rubric: Rubric) -> np.ndarray | None:
    """Plane coefficients (a, b, c: depth = a x + b y + c) of the base metal beside the bead, or None.

    Fitted to valid readings (every 4th pixel) well clear of the bead axis, twice, dropping outliers, so that a
    tilted part does not bias heights.
    """
    ys, xs = np.nonzero(depth[::4, ::4])
    xs, ys = xs * 4, ys * 4
    _, d = axis_coords(bead, xs.astype(np.float64), ys.astype(np.float64))
    clear = np.abs(d) > 0.8 * bead.width_px + 1.0 / rubric.mm_per_px
    xs, ys = xs[clear], ys[clear]
    if xs.size < 20:
        return None
    z = depth[ys, xs].astype(np.float64)
    design = np.column_stack([xs, ys, np.ones(xs.size)]).astype(np.float64)
    keep = np.ones(z.size, bool)
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(design[keep], z[keep], rcond=None)
        keep = np.abs(design @ coef - z) < 1.5
        if keep.sum() < 10:
            return None
    return coef


def heights_mm(depth: np.ndarray, plate: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Height above the plate plane (mm, toward the camera) at the given pixels; NaN where there is no reading."""
    z = depth[ys, xs].astype(np.float32)
    out = (plate[0] * xs + plate[1] * ys + plate[2]).astype(np.float32) - z
    out[z == 0] = np.nan
    return out


def crown_mm(depth: np.ndarray, bead: Bead, plate: np.ndarray, rubric: Rubric) -> tuple[float | None, float]:
    """Bead crown height above the plate (mm) and the longest stretch (mm) where the crown sags below half of it.

    The crown is the central third of the bead; its height is a trimmed mean (depth is quantised to 1 mm, the
    mean over many pixels resolves less). A sagging stretch is a bead too thin to count: a gap with a bridge.
    """
    ys, xs = np.nonzero(bead.mask[::2, ::2])
    xs, ys = xs * 2, ys * 2
    t, d = axis_coords(bead, xs.astype(np.float32), ys.astype(np.float32))
    central = np.abs(d) < bead.width_px / 6
    crown = heights_mm(depth, plate, xs[central], ys[central])
    valid = np.isfinite(crown)
    crown, t = crown[valid], t[central][valid]
    if crown.size < 10:
        return None, 0.0
    lo, hi = np.percentile(crown, [10, 90])
    height = float(crown[(crown >= lo) & (crown <= hi)].mean())
    bin_px = max(1.0, 1.0 / rubric.mm_per_px)
    tb = np.floor((t - t.min()) / bin_px).astype(np.int64)
    n = np.bincount(tb)
    mean = np.bincount(tb, weights=crown) / np.maximum(n, 1)
    sag = (n >= 3) & (mean < 0.5 * height)
    return height, _longest_run(sag) * bin_px * rubric.mm_per_px


def longest_groove_mm(bead: Bead, depth: np.ndarray | None, plate: np.ndarray | None, rubric: Rubric) -> float:
    """Longest groove hugging a bead edge (mm along the axis): dark in the image, or sunken below the plate.

    The band around the bead edge is cut into 1 mm bins per side; a bin is grooved when enough of its pixels
    are dark, or when the mean height of its pixels outside the bead is below ``-groove_depth_mm``.
    """
    px = rubric.mm_per_px
    outer = cv2.dilate(bead.mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (odd(2.5 / px),) * 2))
    inner = cv2.erode(bead.mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    ys, xs = np.nonzero(cv2.bitwise_and(outer, cv2.bitwise_not(inner)))
    if ys.size == 0:
        return 0.0
    t, d = axis_coords(bead, xs.astype(np.float32), ys.astype(np.float32))
    dark = bead.norm[ys, xs] < rubric.groove_max_brightness
    sunk = None
    if depth is not None and plate is not None:
        outside = bead.mask[ys, xs] == 0
        h = heights_mm(depth, plate, xs, ys)
        sunk = outside & np.isfinite(h), np.nan_to_num(h)
    best = 0.0
    bin_px = max(1.0, 1.0 / px)  # 1 mm bins along the axis
    tb_all = np.floor((t - t.min()) / bin_px).astype(np.int64)
    for side in (d < 0, d >= 0):
        tb = tb_all[side]
        if tb.size == 0:
            continue
        total = np.bincount(tb)
        flags = np.bincount(tb, weights=dark[side].astype(np.float64), minlength=total.size) >= np.maximum(
            2, 0.15 * total
        )
        if sunk is not None:
            valid, h = sunk[0][side], sunk[1][side]
            n = np.bincount(tb, weights=valid.astype(np.float64), minlength=total.size)
            mean_h = np.bincount(tb, weights=h * valid, minlength=total.size) / np.maximum(n, 1)
            flags |= (n >= 4) & (mean_h < -rubric.groove_depth_mm)
        flags[1:-1] |= flags[:-2] & flags[2:]  # bridge one-bin breaks
        best = max(best, _longest_run(flags) * bin_px * px)
    return best
