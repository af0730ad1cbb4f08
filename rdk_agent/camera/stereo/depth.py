"""Depth from a rectified stereo pair: uint16 millimetres aligned to the rectified left image, 0 = invalid.

Three steps, all OpenCV and numpy, on a band of rows around the bead (``DepthSettings.band``):

1. **Plate plane.** SGBM at a quarter of the working resolution over the whole disparity range that
   ``z_range_mm`` allows, then a robust least-squares plane d = a·x + b·y + c through its disparities
   (a plane in space is an affine disparity field in a rectified pair).
2. **Residual match.** The right image is warped by that plane, so what is left is the disparity of
   what stands out of it (a bead 3 mm high at 300 mm is under 2 px). SGBM (3-way) searches only
   ``residual_px`` disparities around zero on the band, at the working resolution, with its uniqueness
   test, left-right check and speckle filter deciding what is invalid. Columns left of the plate's
   smallest disparity, which the right camera cannot see, are skipped.
3. **Sub-pixel refinement.** SGBM's 1/16 px parabola locks onto whole pixels (a bias a trimmed mean
   does not remove), so the disparity is refined by a few dense inverse-compositional Lucas–Kanade
   steps along x on mean-removed images (box-filtered normal equations, one bicubic remap of the original
   right image per step). A pixel whose refinement runs away, whose window has too little texture, or
   whose windows do not correlate (normalised cross-correlation below ``min_ncc``) is invalid.

Z = f·B/d. Depth outside the band is 0.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

COARSE = 4  # the plane step works at 1/COARSE of the working resolution


@dataclass(frozen=True)
class DepthSettings:
    """How depth is matched; the defaults are the ones bench/p8_stereo_depth.py measured."""

    band: tuple[float, float] = (0.4, 0.6)  # rows matched, as fractions of the image height
    z_range_mm: tuple[float, float] = (150.0, 600.0)  # nearest and farthest plate the plane step looks for
    residual_px: int = 16  # disparities searched around the plate plane (multiple of 16)
    block: int = 5  # SGBM block size of the residual match
    window: int = 9  # refinement window (odd)
    refine_steps: int = 2
    min_ncc: float = 0.6  # normalised cross-correlation a refined match needs (window of the refinement)
    min_texture: float = 0.5  # mean squared x-gradient a refinement window needs (grey levels²)

    def __post_init__(self) -> None:
        lo, hi = self.band
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError(f"depth band must be two fractions 0 <= top < bottom <= 1, got {self.band}")
        if not 0 < self.z_range_mm[0] < self.z_range_mm[1]:
            raise ValueError(f"z_range_mm must be 0 < near < far, got {self.z_range_mm}")
        if self.residual_px <= 0 or self.residual_px % 16:
            raise ValueError(f"residual_px must be a positive multiple of 16, got {self.residual_px}")
        if self.block % 2 == 0 or self.window % 2 == 0:
            raise ValueError("block and window must be odd")


@dataclass
class DepthResult:
    """One depth map and how it went."""

    depth: np.ndarray  # uint16 mm, 0 = invalid, the rectified left image's size
    valid_fraction: float  # valid pixels on the band where both views see the plate
    band_rows: tuple[int, int]
    ms: float


class StereoDepth:
    """Rectified pair -> uint16 depth in mm (see the module docstring)."""

    def __init__(self, focal_px: float, baseline_mm: float, settings: DepthSettings | None = None) -> None:
        if focal_px <= 0 or baseline_mm <= 0:
            raise ValueError(f"focal ({focal_px}) and baseline ({baseline_mm}) must be positive")
        self.focal_px = float(focal_px)
        self.baseline_mm = float(baseline_mm)
        self.settings = settings or DepthSettings()
        s = self.settings
        self._fb = self.focal_px * self.baseline_mm
        d_lo, d_hi = self._fb / s.z_range_mm[1] / COARSE, self._fb / s.z_range_mm[0] / COARSE
        self._coarse_min = max(0, int(d_lo) - 1)
        span = int(np.ceil(d_hi)) + 2 - self._coarse_min
        self._coarse = _sgbm(self._coarse_min, 16 * max(1, -(-span // 16)), 3)
        self._fine = _sgbm(-s.residual_px // 2, s.residual_px, s.block)

    def band_rows(self, height: int) -> tuple[int, int]:
        """First and last (exclusive) row of the band in an image ``height`` rows high."""
        top = round(self.settings.band[0] * height)
        return top, max(top + 1, round(self.settings.band[1] * height))

    def compute(self, left: np.ndarray, right: np.ndarray) -> DepthResult:
        """Depth of the rectified ``left`` view (BGR or grey, same size as ``right``)."""
        started = time.perf_counter()
        if left.shape != right.shape:
            raise ValueError(f"left {left.shape[1::-1]} and right {right.shape[1::-1]} differ in size")
        h, w = left.shape[:2]
        y0, y1 = self.band_rows(h)
        off = max(0, y0 - 4 * COARSE)  # only the band and its margins are ever looked at
        rows = slice(off, min(h, y1 + 4 * COARSE))
        gl, gr = _gray(left[rows]), _gray(right[rows])
        depth = np.zeros((h, w), np.uint16)
        plane = self._plane(gl, gr, y0 - off, y1 - off)
        valid_fraction = 0.0
        if plane is not None:
            band_depth, valid_fraction = self._band(gl, gr, plane, y0 - off, y1 - off)
            depth[y0:y1] = band_depth
        return DepthResult(depth, valid_fraction, (y0, y1), (time.perf_counter() - started) * 1000)

    def _plane(self, gl: np.ndarray, gr: np.ndarray, y0: int, y1: int) -> np.ndarray | None:
        """(a, b, c) of the plate's disparity plane in the pixels of ``gl``, from a coarse SGBM of the band."""
        h, w = gl.shape
        pad = 4 * COARSE
        top, bottom = max(0, y0 - pad), min(h, y1 + pad)
        size = (max(16, w // COARSE), max(8, (bottom - top) // COARSE))
        small_l = cv2.resize(gl[top:bottom], size, interpolation=cv2.INTER_AREA)
        small_r = cv2.resize(gr[top:bottom], size, interpolation=cv2.INTER_AREA)
        disp = self._coarse.compute(small_l, small_r).astype(np.float32) / 16
        ys, xs = np.nonzero(disp >= self._coarse_min)
        if xs.size < 50:
            return None
        sx, sy = w / size[0], (bottom - top) / size[1]
        x = (xs + 0.5) * sx - 0.5
        y = (ys + 0.5) * sy - 0.5 + top
        d = disp[ys, xs].astype(np.float64) * sx
        design = np.column_stack([x, y, np.ones_like(x)])
        keep = np.ones(d.size, bool)
        coef = np.zeros(3)
        for tol in (8.0, 3.0, 1.5):
            coef, *_ = np.linalg.lstsq(design[keep], d[keep], rcond=None)
            keep = np.abs(design @ coef - d) < tol * COARSE / 4
            if keep.sum() < 30:
                return None
        return coef

    def _band(self, gl: np.ndarray, gr: np.ndarray, plane: np.ndarray, y0: int, y1: int) -> tuple[np.ndarray, float]:
        """Depth (uint16 mm) of rows y0..y1 and the valid fraction where both views see the band.

        Columns left of the plate's smallest disparity are not seen by the right camera and are skipped.
        """
        s = self.settings
        h, w = gl.shape
        m = s.block // 2 + s.window // 2 + 2
        top, bottom = max(0, y0 - m), min(h, y1 + m)
        d_min = min(plane[1] * top, plane[1] * bottom) + min(0.0, plane[0] * w) + plane[2]
        x0 = int(np.clip(d_min - s.residual_px // 2 - 2 * m, 0, w - 16)) // 16 * 16
        left, right = gl[top:bottom, x0:], gr[top:bottom]
        xs = np.arange(x0, w, dtype=np.float32)[None, :]
        ys = np.arange(top, bottom, dtype=np.float32)[:, None]
        d_plane = np.float32(plane[0]) * xs + np.float32(plane[1]) * ys + np.float32(plane[2])
        map_x = xs - d_plane
        map_y = np.broadcast_to(ys - np.float32(top), map_x.shape).astype(np.float32)
        warped = cv2.remap(right, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        residual, ok = self._match(left, warped)
        residual, ok = self._refine(left, right, map_x, map_y, residual, ok)
        disparity = d_plane + residual
        seen = map_x - residual >= 1
        ok &= seen & (disparity > 0)
        z = np.float32(self._fb) / np.maximum(disparity, 1e-3)
        ok &= z < 65535
        crop = slice(y0 - top, y0 - top + (y1 - y0))
        depth = np.zeros((y1 - y0, w), np.uint16)
        depth[:, x0:] = np.where(ok[crop], np.rint(z[crop]), 0)
        band_seen = seen[crop]
        fraction = float(ok[crop][band_seen].mean()) if band_seen.any() else 0.0
        return depth, fraction

    def _match(self, left: np.ndarray, warped: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residual disparity (1/16 px) against the plane-warped right view, and its validity."""
        s = self.settings
        raw = self._fine.compute(left, warped)
        ok = raw > (-s.residual_px // 2 - 1) * 16
        residual = raw.astype(np.float32) * np.float32(1 / 16)
        residual[~ok] = 0
        return residual, ok

    def _refine(
        self,
        left: np.ndarray,
        right: np.ndarray,
        map_x: np.ndarray,
        map_y: np.ndarray,
        residual: np.ndarray,
        ok: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Inverse-compositional Lucas–Kanade steps along x on mean-removed images: residual -= Σ g·e / Σ g² over
        the window, g the left image's x-gradient (so Σ g² is computed once), e = left - right shifted by the
        disparity so far."""
        s = self.settings
        win = (s.window, s.window)
        lf = _zero_mean(left, s.window)
        rf = _zero_mean(right, s.window)
        start = residual.copy()
        glx = cv2.Sobel(lf, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
        texture = cv2.boxFilter(cv2.multiply(glx, glx), -1, win)
        inverse = cv2.divide(np.float32(1.0), np.maximum(texture, np.float32(1e-6)))
        shifted = lf
        for _ in range(s.refine_steps):
            shifted = cv2.remap(rf, map_x - residual, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            num = cv2.boxFilter(cv2.multiply(glx, cv2.subtract(lf, shifted)), -1, win)
            residual = cv2.subtract(residual, np.clip(cv2.multiply(num, inverse), -1.0, 1.0))
        # the match itself: normalised cross-correlation of the windows at the (next to) final disparity
        cross = cv2.boxFilter(cv2.multiply(lf, shifted), -1, win)
        energy = cv2.multiply(
            cv2.boxFilter(cv2.multiply(lf, lf), -1, win), cv2.boxFilter(cv2.multiply(shifted, shifted), -1, win)
        )
        similar = cv2.multiply(cross, np.abs(cross)) >= np.float32(s.min_ncc**2) * energy
        ok = ok & similar & (np.abs(residual - start) <= 1.0) & (texture >= s.min_texture)
        return residual, ok


def _sgbm(min_disparity: int, num_disparities: int, block: int) -> cv2.StereoSGBM:
    return cv2.StereoSGBM.create(
        minDisparity=min_disparity,
        numDisparities=num_disparities,
        blockSize=block,
        P1=8 * block * block,
        P2=32 * block * block,
        disp12MaxDiff=1,
        uniquenessRatio=5,
        speckleWindowSize=50,
        speckleRange=2,
        mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY,
    )


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.dtype != np.uint8:
        raise ValueError(f"stereo images must be 8-bit, got {image.dtype}")
    return image


def _zero_mean(gray: np.ndarray, window: int) -> np.ndarray:
    image = gray.astype(np.float32)
    return image - cv2.boxFilter(image, -1, (window, window))
