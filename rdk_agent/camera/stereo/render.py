"""Stereo pairs rendered from a known height field: the tests', the bench's and the demo's stereo camera.

A :class:`WeldPlateScene` is a textured steel plate (a plane, tilted a few degrees, ``distance_mm`` in front of
the left camera) carrying a weld bead: a parabolic ridge ``h(s) = H (1 - (2 s / W)^2)`` across ``|s| < W/2``,
``s`` the distance from the bead's axis in plate coordinates. A :class:`StereoRig` is two pinhole cameras
(optionally with lens distortion and a slight relative rotation) ``baseline_mm`` apart. :func:`render_pair`
ray-casts every (supersampled) sensor pixel of each camera: the pixel is undistorted to a ray, the ray is
intersected exactly with the height field (a quadratic on the bead), and the surface is shaded from a
texture painted in plate millimetres (multi-scale mottling and brush marks, a brighter rippled bead, a heat
tint beside it, a light gradient), then area-averaged to the sensor size with mild sensor noise. Appearance
is fixed in plate coordinates, so both views agree and stereo matching has a unique answer;
:func:`truth_depth` gives that answer, Z in mm in the rectified left camera at every rectified pixel.

Scale for the rules: a rendered frame shows ``distance_mm / focal_px`` mm per pixel (about 0.43 at 300 mm with
the default rig, against 0.125 for the synthetic camera); at a rectification ``scale`` use
``Rubric(mm_per_px=scene.distance_mm / rect.focal_px)`` (``rect.focal_px`` already includes the scale; the
default targets, 8 +- 3.5 mm wide and 2 +- 1.3 mm high, fit the scenes). With that, ``RuleEvaluator`` finds the
bead on the rectified left image and measures its height from the depth within 0.2 mm when the exact depth is
dithered to whole mm, and up to 0.3 mm low when it is plainly rounded (the terraces of a smooth plate). The
stereo source rounds: bench P8 measured an ordered dither there and kept rounding (smaller mean bias).

Calibration views of a checkerboard are in ``checkerboard.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from rdk_agent.camera.stereo.calibration import Rectification, StereoCalibration

_UNDISTORT = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 1e-10)


@dataclass(frozen=True)
class StereoRig:
    """Two cameras; the right one ``baseline_mm`` to the right of the left one, rotated by ``right_rvec``."""

    width: int = 640
    height: int = 480
    focal_px: float = 700.0
    cx: float = 319.5
    cy: float = 239.5
    baseline_mm: float = 70.0
    dist_left: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    dist_right: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    right_rvec: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def K(self) -> np.ndarray:
        """The camera matrix (both cameras)."""
        return np.array([[self.focal_px, 0, self.cx], [0, self.focal_px, self.cy], [0, 0, 1]], np.float64)

    @property
    def R(self) -> np.ndarray:
        """Rotation of the right camera from the left (OpenCV's stereoCalibrate convention)."""
        return cv2.Rodrigues(np.array(self.right_rvec, np.float64))[0]

    @property
    def T(self) -> np.ndarray:
        """Translation of the right camera from the left, mm: X_right = R X_left + T."""
        return -self.R @ np.array([self.baseline_mm, 0.0, 0.0])

    def camera(self, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(K, distortion, rotation world->camera, centre in world) of ``side``; world = left camera frame."""
        if side == "left":
            return self.K, np.array(self.dist_left, np.float64), np.eye(3), np.zeros(3)
        return self.K, np.array(self.dist_right, np.float64), self.R, np.array([self.baseline_mm, 0.0, 0.0])

    def calibration(self) -> StereoCalibration:
        """The rig's exact calibration."""
        _, d1, _, _ = self.camera("left")
        _, d2, _, _ = self.camera("right")
        size = (self.width, self.height)
        return StereoCalibration(size, "pinhole", self.K, d1, self.K, d2, self.R, self.T, 0.0, "rendered rig")

    @classmethod
    def distorted(cls, k1: float = -0.22, rotation_deg: float = 0.45, **fields: float) -> StereoRig:
        """A rig with barrel distortion (``k1`` on the left, a little less on the right) and a slight relative tilt."""
        r = math.radians(rotation_deg)
        return cls(
            dist_left=(k1, 0.35 * abs(k1), 4e-4, -3e-4, 0.0),
            dist_right=(0.9 * k1, 0.3 * abs(k1), -3e-4, 2e-4, 0.0),
            right_rvec=(0.6 * r, -0.7 * r, 0.4 * r),
            **fields,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class WeldPlateScene:
    """A plate with one weld bead; lengths in mm, angles in degrees (bead angle in the plate, ~ the image)."""

    distance_mm: float = 290.0
    tilt_deg: tuple[float, float] = (0.0, 0.0)
    bead_height_mm: float = 2.2
    bead_width_mm: float = 8.0
    bead_angle_deg: float = 0.0
    bead_offset_mm: float = 0.0
    texture_seed: int = 0
    texture_scale: float = 0.7


def random_scene(rng: np.random.Generator) -> WeldPlateScene:
    """A scene within the issue's ranges: 250-320 mm, beads 1.5-3 mm high and 6-10 mm wide, varied texture."""
    return WeldPlateScene(
        distance_mm=float(rng.uniform(250, 320)),
        tilt_deg=(float(rng.uniform(-4, 4)), float(rng.uniform(-4, 4))),
        bead_height_mm=float(rng.uniform(1.5, 3.0)),
        bead_width_mm=float(rng.uniform(6.0, 10.0)),
        bead_angle_deg=float(rng.uniform(-20, 20)),
        bead_offset_mm=float(rng.uniform(-15, 15)),
        texture_seed=int(rng.integers(0, 2**31)),
        texture_scale=float(rng.uniform(0.5, 1.2)),
    )


@lru_cache(maxsize=6)
def sensor_rays(rig: StereoRig, side: str, supersample: int) -> tuple[np.ndarray, np.ndarray]:
    """(centre, world ray directions as float32 (N, 3)) of the supersampled sensor pixels, row-major.

    Exact undistortion runs on the pixel grid (one pixel of margin); the supersamples interpolate it linearly
    (cv2.resize keeps pixel centres), which is exact to ~1e-4 px for lens distortion's smooth field.
    """
    k, dist, rot, centre = rig.camera(side)
    ss = supersample
    ys, xs = np.mgrid[-1 : rig.height + 1, -1 : rig.width + 1].astype(np.float64)
    pts = np.stack([xs, ys], axis=-1).reshape(-1, 1, 2)
    norm = cv2.undistortPointsIter(pts, k, dist, np.eye(3), np.eye(3), _UNDISTORT).reshape(
        rig.height + 2, rig.width + 2, 2
    )
    if ss > 1:
        norm = cv2.resize(norm, ((rig.width + 2) * ss, (rig.height + 2) * ss), interpolation=cv2.INTER_LINEAR)
        norm = norm[ss : ss + rig.height * ss, ss : ss + rig.width * ss]
    else:
        norm = norm[1:-1, 1:-1]
    dirs = np.concatenate([norm.reshape(-1, 2), np.ones((norm.shape[0] * norm.shape[1], 1))], axis=1) @ rot
    return centre, dirs.astype(np.float32)  # rows: R^T d


class _Geometry:
    """The scene's plate frame and bead in the world (the left camera frame)."""

    def __init__(self, scene: WeldPlateScene) -> None:
        rx, ry = (math.radians(a) for a in scene.tilt_deg)
        tilt = cv2.Rodrigues(np.array([rx, 0.0, 0.0]))[0] @ cv2.Rodrigues(np.array([0.0, ry, 0.0]))[0]
        self.origin = np.array([0.0, 0.0, scene.distance_mm])
        self.eu, self.ev, self.en = tilt[:, 0], tilt[:, 1], -tilt[:, 2]  # en points toward the camera
        a = math.radians(scene.bead_angle_deg)
        self.along = math.cos(a) * self.eu + math.sin(a) * self.ev
        self.across = -math.sin(a) * self.eu + math.cos(a) * self.ev
        self.offset, self.height, self.half = scene.bead_offset_mm, scene.bead_height_mm, scene.bead_width_mm / 2
        self.k = scene.bead_height_mm / self.half**2

    def intersect(self, centre: np.ndarray, dirs: np.ndarray) -> dict[str, np.ndarray]:
        """First hit of rays ``centre + t dirs`` (world) on the surface.

        Returns t, plate coordinates u and v, s across the bead, ``along`` it, and dh/ds at the hit (0 on the plate).
        """
        rel = centre - self.origin
        proj = dirs @ np.column_stack([self.en, self.across, self.eu, self.ev, self.along]).astype(dirs.dtype)
        b, e = proj[:, 0].astype(np.float64), proj[:, 1].astype(np.float64)  # dn/dt (negative), ds/dt
        t = -(rel @ self.en) / b
        s = (rel @ self.across - self.offset) + t * e
        # rays that pass within the bead's span while above the plate can hit its cap (the others hit the plate)
        near = np.flatnonzero(np.abs(s) - np.abs(e) * self.height / np.abs(b) < self.half)
        tau = self._cap(s[near], b[near], e[near])
        t[near] += tau
        s[near] += e[near] * tau
        dh = np.zeros_like(s)
        dh[near] = np.where(np.abs(s[near]) < self.half, -2 * self.k * s[near], 0.0)
        return {
            "t": t,
            "u": rel @ self.eu + t * proj[:, 2],
            "v": rel @ self.ev + t * proj[:, 3],
            "along": rel @ self.along + t * proj[:, 4],
            "s": s,
            "dh": dh,
        }

    def _cap(self, s0: np.ndarray, b: np.ndarray, e: np.ndarray) -> np.ndarray:
        """Offset tau (<= 0) from the plate hit to the first surface hit: b tau = H - k (s0 + e tau)^2 on the cap."""
        qa, qb, qc = self.k * e * e, b + 2 * self.k * s0 * e, self.k * s0**2 - self.height
        disc = qb * qb - 4 * qa * qc
        q = -0.5 * (qb + np.copysign(np.sqrt(np.maximum(disc, 0.0)), qb))
        with np.errstate(divide="ignore", invalid="ignore"):
            roots = np.stack([np.where(qa > 1e-15, q / qa, np.inf), np.where(q != 0, qc / q, np.inf)])
        ok = (disc >= 0) & np.isfinite(roots) & (roots <= 1e-9) & (np.abs(s0 + e * roots) <= self.half * (1 + 1e-9))
        first = np.where(ok, roots, np.inf).min(axis=0)
        plate_visible = np.abs(s0) >= self.half  # the plate hit is beside the bead: it counts unless the cap is first
        return np.where(plate_visible, np.minimum(first, 0.0), np.where(np.isfinite(first), first, 0.0))


class _Look:
    """The scene's appearance, drawn from its texture seed: levels, tints, ripples, light, and a texture in mm."""

    def __init__(self, scene: WeldPlateScene) -> None:
        rng = np.random.default_rng([scene.texture_seed, 0x57E4E0])
        self.plate_level = float(rng.uniform(90, 140))
        self.bead_gain = float(rng.uniform(1.45, 1.8))
        self.contrast = float(rng.uniform(0.05, 0.08))
        self.period = float(rng.uniform(1.8, 3.5))  # ripple pitch along the bead, mm
        self.chevron = float(rng.uniform(0.2, 0.8))
        self.plate_tint = 1 + rng.uniform(-0.06, 0.06, 3)
        self.bead_tint = self.plate_tint + rng.uniform(-0.08, 0.08, 3)
        self.haz_tint = np.array([0.12, 0.02, -0.1]) * float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.2, 0.8))
        side = rng.uniform(-0.35, 0.35, 2)
        light = np.array([side[0], side[1], -1.0])
        self.light = light / np.linalg.norm(light)  # toward the light, in the world
        self.gradient = rng.uniform(-0.0012, 0.0012, 2)  # brightness change per mm of plate
        self.spec = float(rng.uniform(8, 25))
        self.right_gain = float(rng.uniform(0.97, 1.03))
        self.noise_sd = float(rng.uniform(0.8, 1.8))
        self.extent = _plate_extent(scene)
        self.texel = scene.texture_scale / 3
        self.texture = _texture(scene.texture_seed, scene.texture_scale, self.extent, self.texel)

    def shade(self, geo: _Geometry, hit: dict[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
        """Float32 BGR radiance at the hits (reshaped to ``shape``)."""
        f32 = np.float32
        mx = ((hit["u"] - self.extent[0]) / self.texel).astype(f32).reshape(shape)
        my = ((hit["v"] - self.extent[1]) / self.texel).astype(f32).reshape(shape)
        tex = cv2.remap(self.texture, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).ravel()
        s, half = hit["s"].astype(f32), geo.half
        blend = np.clip((half - np.abs(s)) / f32(0.4) + f32(0.5), 0, 1)
        grey = self.plate_level * (1 + f32(self.contrast) * tex)
        bead = np.flatnonzero(blend > 0)  # ripples, side light and the crown highlight: on the bead only
        sb, dh = s[bead], hit["dh"][bead].astype(f32)
        phase = hit["along"][bead].astype(f32) - f32(self.chevron / half) * sb * sb
        ripple = np.cos(f32(2 * np.pi / self.period) * phase)
        # unit normal (en - dh across) / sqrt(1 + dh^2): en and across are orthonormal
        cos_l = (f32(geo.en @ self.light) - dh * f32(geo.across @ self.light)) / np.sqrt(1 + dh * dh)
        cos_l = np.maximum(cos_l, 0)
        shading = f32(0.35) + f32(0.65 / (geo.en @ self.light)) * cos_l
        lit = grey[bead] * f32(self.bead_gain) * (1 + f32(0.12) * ripple) * shading + f32(self.spec) * cos_l**40
        grey[bead] += blend[bead] * (lit - grey[bead])
        grey *= (1 + self.gradient[0] * hit["u"] + self.gradient[1] * hit["v"]).astype(f32)
        haz = np.maximum(0, 1 - np.abs(np.abs(s) - f32(1.4 * half)) / f32(0.6 * half)) * (1 - blend)
        tint = (self.plate_tint + blend[:, None] * (self.bead_tint - self.plate_tint).astype(f32)).astype(f32)
        bgr = grey[:, None] * (tint + haz[:, None] * self.haz_tint.astype(f32))
        return bgr.reshape(*shape, 3)


@lru_cache(maxsize=2)
def _texture(seed: int, scale: float, extent: tuple[float, float, float, float], texel: float) -> np.ndarray:
    """Zero-mean unit-std metal texture over ``extent`` (plate mm) at ``texel`` mm: grain, mottling, brushing."""
    rng = np.random.default_rng([seed, 0x7E57])
    u0, v0, u1, v1 = extent
    w, h = math.ceil((u1 - u0) / texel) + 2, math.ceil((v1 - v0) / texel) + 2
    fine = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (0, 0), scale / 2 / texel)
    half = cv2.GaussianBlur(rng.standard_normal((h // 2 + 1, w // 2 + 1), dtype=np.float32), (0, 0), scale / 2 / texel)
    mid = cv2.resize(half, (w, h), interpolation=cv2.INTER_LINEAR)
    factor = max(1, round(4 / texel))  # broad mottling (~10 mm), drawn at 4 mm per cell, then enlarged
    small = cv2.GaussianBlur(rng.standard_normal((h // factor + 2, w // factor + 2), dtype=np.float32), (0, 0), 2.5)
    broad = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    streak = _brush(
        rng.standard_normal((h // 2 + 1, w // 2 + 1), dtype=np.float32), float(rng.uniform(0, 180)), int(2 / texel)
    )
    brushed = cv2.resize(streak, (w, h), interpolation=cv2.INTER_LINEAR)
    weights = rng.uniform([0.6, 0.4, 0.2, 0.2], [1.0, 0.8, 0.5, 0.6])
    layers = (fine, mid, broad, brushed)
    tex = sum(wt * layer / layer.std() for wt, layer in zip(weights, layers, strict=True))
    tex -= tex.mean()
    tex = (tex / tex.std()).astype(np.float32)
    tex.setflags(write=False)
    return tex


def _brush(noise: np.ndarray, angle_deg: float, length: int) -> np.ndarray:
    """Noise smeared along ``angle_deg`` over ``length`` texels."""
    n = max(3, length | 1)
    kernel = np.zeros((n, n), np.float32)
    c, s, r = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg)), n // 2
    cv2.line(kernel, (round(r - r * c), round(r - r * s)), (round(r + r * c), round(r + r * s)), 1.0, 1)
    return cv2.filter2D(noise, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


def _plate_extent(scene: WeldPlateScene) -> tuple[float, float, float, float]:
    """Plate (u, v) bounds, mm, that the texture covers: wider than any ~65 degree view from up to 150 mm right."""
    d = scene.distance_mm
    return (-0.75 * d - 20, -0.6 * d - 20, 0.75 * d + 170, 0.6 * d + 20)


def to_sensor(radiance: np.ndarray, size: tuple[int, int], noise_sd: float, rng: np.random.Generator) -> np.ndarray:
    """Area-average to the sensor size, add sensor noise, quantise."""
    image = cv2.resize(radiance, size, interpolation=cv2.INTER_AREA)
    image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(noise_sd)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def render_pair(scene: WeldPlateScene, rig: StereoRig, supersample: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Raw (distorted) left and right BGR uint8 sensor images of ``scene``."""
    geo = _Geometry(scene)
    look = _Look(scene)
    rng = np.random.default_rng([scene.texture_seed, 0x5E7504])
    shape = (rig.height * supersample, rig.width * supersample)
    out = []
    for side, gain in (("left", 1.0), ("right", look.right_gain)):
        centre, dirs = sensor_rays(rig, side, supersample)
        radiance = look.shade(geo, geo.intersect(centre, dirs), shape)
        out.append(to_sensor(radiance * np.float32(gain), (rig.width, rig.height), look.noise_sd, rng))
    return out[0], out[1]


def _rectified_hits(scene: WeldPlateScene, rig: StereoRig, rect: Rectification) -> tuple[_Geometry, dict]:
    """Surface hits of the rays through every rectified-left pixel centre (rays with unit z in the rectified frame)."""
    if rect.source_size != (rig.width, rig.height):
        raise ValueError(f"rectification is for {rect.source_size}, the rig is {rig.width}x{rig.height}")
    w, h = rect.size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    pix = np.column_stack([xs.ravel(), ys.ravel(), np.ones(w * h)])
    dirs = pix @ np.linalg.inv(rect.P1[:, :3]).T @ rect.R1  # rows: R1^T d, d = (x', y', 1) in the rectified frame
    geo = _Geometry(scene)
    return geo, geo.intersect(np.zeros(3), dirs)


def truth_depth(scene: WeldPlateScene, rig: StereoRig, rect: Rectification) -> np.ndarray:
    """Exact Z (mm, float32) in the rectified left camera frame at every rectified-left pixel (``rect.size``)."""
    _, hit = _rectified_hits(scene, rig, rect)
    # the rays have unit z in the rectified frame, so Z = t
    return hit["t"].reshape(rect.size[1], rect.size[0]).astype(np.float32)


def truth_masks(
    scene: WeldPlateScene, rig: StereoRig, rect: Rectification, clearance_mm: float = 4.0
) -> tuple[np.ndarray, np.ndarray]:
    """(bead, plate) boolean masks at rectified-left pixels; plate is ``clearance_mm`` or more from the bead edges."""
    geo, hit = _rectified_hits(scene, rig, rect)
    shape = (rect.size[1], rect.size[0])
    dist = np.abs(hit["s"])
    return (dist < geo.half).reshape(shape), (dist >= geo.half + clearance_mm).reshape(shape)
