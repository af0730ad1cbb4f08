"""Synthetic weld frames with depth: the embedded default camera, the demo's parts and the tests' data.

A brushed-metal plate under uneven, tinted light carries a weld bead (a rippled ridge across the frame at a
random angle, offset and width). Each label adds its defect:

* ``porosity``: dark round pores on the bead (shallow dips in depth);
* ``spatter``:  small bright droplets on the base metal beside the bead (small bumps in depth);
* ``gap``:      the bead is missing for a stretch (depth back to the plate, the joint seam visible);
* ``undercut``: a dark groove along a bead edge (depth below the plate).

Defect severities run from blatant to subtle (a single faint pore, a short bridged gap, a faint groove), and
every label, ``good`` included, gets nuisances (scale and oxide spots, scratches, glare, dust, toe shadows,
lighting and focus changes), so that no single global pixel statistic separates the classes. Drawing of
defects and nuisances lives in ``synthetic_marks.py``. Frames are deterministic
under ``seed``: frame *i* of a generator depends only on ``(seed, i, label)``. An unknown label raises
``ValueError`` (no silent substitution). Geometry is in pixels; ``meta["mm_per_px"]`` gives the scale.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from rdk_agent.camera.base import CameraError, CameraSource, Frame
from rdk_agent.camera.synthetic_marks import draw_defects, draw_gap, draw_nuisances, rounded

LABELS: tuple[str, ...] = ("good", "porosity", "spatter", "gap", "undercut")
MM_PER_PX = 0.125  # nominal scale at the nominal 640 px width (an 80 mm field of view)
CAMERA_MM = 300.0  # camera to plate distance
_PAD = 64  # margin of the precomputed texture and noise banks, cropped at a random offset per frame


class SyntheticWeldGenerator:
    """Renders weld frames of a requested label; see the module docstring."""

    def __init__(self, seed: int = 0, width: int = 640, height: int = 480) -> None:
        if width < 64 or height < 64:
            raise ValueError(f"synthetic frames need at least 64x64 pixels, got {width}x{height}")
        self.seed = int(seed)
        self.width, self.height = int(width), int(height)
        self.mm_per_px = MM_PER_PX * 640 / self.width
        self._count = 0
        rng = np.random.default_rng([self.seed, 0xBA5E])
        bank_shape = (self.height + _PAD, self.width + _PAD)
        self._brushed = [_brushed_texture(rng, bank_shape, angle) for angle in (0, 45, 90, 135)]
        self._noise = rng.standard_normal((*bank_shape, 3), dtype=np.float32)
        self._depth_noise = rng.standard_normal(bank_shape, dtype=np.float32)
        yy, xx = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        self._xx, self._yy = xx, yy
        self._scratch: dict[tuple[str, int], np.ndarray] = {}
        self._lock = threading.Lock()

    def generate(self, label: str) -> Frame:
        """Render the next frame showing ``label``; ValueError for a label outside ``LABELS``."""
        if label not in LABELS:
            raise ValueError(f"unknown synthetic label {label!r}; expected one of {', '.join(LABELS)}")
        with self._lock:  # the scratch buffers are shared between frames
            index = self._count
            self._count += 1
            rng = np.random.default_rng([self.seed, index, LABELS.index(label)])
            rgb, depth, meta = _Scene(self, rng, label).render()
        meta.update(label=label, seed=self.seed, index=index, mm_per_px=rounded(self.mm_per_px))
        return Frame(rgb=rgb, depth=depth, timestamp=time.time(), meta=meta)

    def scratch(self, name: str, channels: int = 1) -> np.ndarray:
        """A float32 frame-sized work buffer kept between frames: fresh megabyte temporaries cost page faults."""
        key = (name, channels)
        if key not in self._scratch:
            shape = (self.height, self.width) if channels == 1 else (self.height, self.width, channels)
            self._scratch[key] = np.empty(shape, np.float32)
        return self._scratch[key]

    def crop(self, bank: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A frame-sized window of a precomputed bank at a random offset."""
        oy, ox = (int(v) for v in rng.integers(0, _PAD, size=2))
        return bank[oy : oy + self.height, ox : ox + self.width]


def _brushed_texture(rng: np.random.Generator, shape: tuple[int, int], angle_deg: float) -> np.ndarray:
    """Zero-mean, unit-std noise smeared along ``angle_deg`` (brushed metal)."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    kernel = np.zeros((41, 41), np.float32)
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    cv2.line(kernel, (int(20 - 20 * c), int(20 - 20 * s)), (int(20 + 20 * c), int(20 + 20 * s)), 1.0, 1)
    kernel /= kernel.sum()
    tex = cv2.filter2D(noise, -1, kernel, borderType=cv2.BORDER_REFLECT) + 0.25 * noise
    tex -= tex.mean()
    return tex / tex.std()


class _Scene:
    """One frame's random draw and its rendering into the generator's scratch buffers."""

    def __init__(self, gen: SyntheticWeldGenerator, rng: np.random.Generator, label: str) -> None:
        self.gen, self.rng, self.label = gen, rng, label
        h, w = gen.height, gen.width
        scale = w / 640
        self.scale = scale
        self.theta = float(rng.uniform(0, math.pi))
        self.c, self.s = math.cos(self.theta), math.sin(self.theta)
        off = rng.uniform(-0.15, 0.15) * min(h, w)
        self.cx, self.cy = w / 2 - off * self.s, h / 2 + off * self.c
        self.hw = float(rng.uniform(20, 45)) * scale  # bead half width, px
        self.bead_h = float(rng.uniform(1.0, 3.0))  # bead height, mm
        # the half width wanders along the axis: hw * (1 + wobble * sin(freq * t + phase))
        self.wobble, self.freq, self.phase = (float(v) for v in rng.uniform((0.03, 0.01, 0), (0.12, 0.04, 6)))
        self.t_lo, self.t_hi = self._visible_t()
        self.dark = gen.scratch("dark")  # multiplicative darkening (pores, grooves, scale)
        self.dark.fill(1)
        self.bright = gen.scratch("bright")  # additive highlights (droplets, glare, scratches)
        self.bright.fill(0)
        self.dh = gen.scratch("dh")  # height offsets in mm (dips < 0, bumps > 0)
        self.dh.fill(0)
        self.meta: dict = {"defects": [], "nuisances": []}

    def _visible_t(self) -> tuple[float, float]:
        ts = np.linspace(-1.2 * self.gen.width, 1.2 * self.gen.width, 400)
        x, y = self.cx + ts * self.c, self.cy + ts * self.s
        inside = ts[(x >= 0) & (x < self.gen.width) & (y >= 0) & (y < self.gen.height)]
        return float(inside.min()), float(inside.max())

    def half_width(self, t: float) -> float:
        """The bead's half width in pixels at ``t`` along its axis."""
        return self.hw * (1 + self.wobble * math.sin(self.freq * t + self.phase))

    def is_inside(self, x: int, y: int, margin: int = 4) -> bool:
        """Whether pixel (x, y) lies in the frame, ``margin`` pixels clear of its border."""
        return margin <= x < self.gen.width - margin and margin <= y < self.gen.height - margin

    def inside(self, draw: Callable[[], tuple[float, float]]) -> tuple[int, int]:
        """The pixel of the first ``(t, d)`` from ``draw`` that lies in the frame (clamped into it if none does)."""
        for _ in range(20):
            x, y = self.at(*draw())
            if self.is_inside(x, y):
                return x, y
        return min(max(x, 4), self.gen.width - 5), min(max(y, 4), self.gen.height - 5)

    def at(self, t: float, d: float) -> tuple[int, int]:
        """Pixel position at ``t`` along the bead axis and ``d`` across it."""
        return round(self.cx + t * self.c - d * self.s), round(self.cy + t * self.s + d * self.c)

    def render(self) -> tuple[np.ndarray, np.ndarray, dict]:
        """Draw the frame, in place in scratch buffers; returns fresh BGR and depth arrays and the meta."""
        rng, gen, buf = self.rng, self.gen, self.gen.scratch
        xx, yy, f32 = gen._xx, gen._yy, np.float32
        tmp = buf("tmp")
        t = np.multiply(xx, f32(self.c), out=buf("t"))
        t += np.multiply(yy, f32(self.s), out=tmp)
        t -= f32(self.cx * self.c + self.cy * self.s)  # along the bead axis
        d = np.multiply(yy, f32(self.c), out=buf("d"))
        d -= np.multiply(xx, f32(self.s), out=tmp)
        d -= f32(self.cy * self.c - self.cx * self.s)  # across it
        # the bead profile is a parabolic cap of the wandering half width
        hw = np.multiply(t, f32(self.freq), out=buf("hw"))
        hw += f32(self.phase)
        np.sin(hw, out=hw)
        hw *= f32(self.hw * self.wobble)
        hw += f32(self.hw)
        u = np.divide(d, hw, out=buf("u"))
        usq = np.multiply(u, u, out=buf("usq"))
        profile = np.subtract(f32(1), usq, out=buf("profile"))
        np.maximum(profile, 0, out=profile)
        mask = np.abs(u, out=buf("mask"))
        np.subtract(f32(1), mask, out=mask)
        mask *= hw
        mask *= f32(1 / 1.5)  # about 1.5 px of soft edge
        np.clip(mask, 0, 1, out=mask)
        if self.label == "gap":
            gate = draw_gap(self, t)
            profile *= gate
            mask *= gate
        # bead: brighter than the plate, rippled (chevrons), lit from one side, specular along the crown
        gain = float(rng.uniform(0.6, 1.3))
        plate_level = float(rng.uniform(95, 165)) * gain
        bead_level = plate_level * float(rng.uniform(1.1, 1.55))
        period = float(rng.uniform(6, 14)) * self.scale
        ripple = usq
        ripple *= f32(-rng.uniform(0.2, 0.8) * self.hw)
        ripple += t
        ripple *= f32(2 * math.pi / period)
        np.cos(ripple, out=ripple)
        crown = np.multiply(profile, profile, out=buf("crown"))
        crown *= crown
        crown *= crown  # (1 - u^2)^8: a narrow highlight along the crown
        spec_gain = float(rng.uniform(15, 60)) * gain
        np.multiply(ripple, f32(0.3 * spec_gain), out=tmp)
        tmp += f32(0.7 * spec_gain)
        crown *= tmp
        side = float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.1, 0.3))
        gray = np.multiply(ripple, f32(0.12 * bead_level), out=buf("gray"))
        gray += f32(0.88 * bead_level)
        u *= f32(-side)
        u += 1
        gray *= u
        gray += crown
        # plate: brushed texture; bead blended over it; a linear light gradient over both
        brushed = gen.crop(gen._brushed[int(rng.integers(0, 4))], rng)
        plate = np.multiply(brushed, f32(plate_level * rng.uniform(0.03, 0.09)), out=buf("plate"))
        plate += f32(plate_level)
        gray -= plate
        gray *= mask
        gray += plate
        ga, amp = float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0.05, 0.35))
        norm = amp / max(gen.width, gen.height)
        grad = np.multiply(xx, f32(math.cos(ga) * norm), out=crown)
        grad += np.multiply(yy, f32(math.sin(ga) * norm), out=tmp)
        grad += f32(1 - amp / 2)
        gray *= grad
        draw_defects(self)
        draw_nuisances(self)
        gray *= self.dark
        self.bright *= f32(gain)
        gray += self.bright
        sigma = float(rng.uniform(0.4, 1.4))
        blurred = cv2.GaussianBlur(gray, (0, 0), sigma, dst=buf("blurred"))
        rgbf = self._colourise(blurred, mask, d, rng)
        noise_sd = float(rng.uniform(2, 7))
        cv2.scaleAdd(gen.crop(gen._noise, rng), noise_sd, rgbf, dst=rgbf)
        np.clip(rgbf, 0, 255, out=rgbf)
        rgb = rgbf.astype(np.uint8)
        depth = self._depth(profile, rng)
        self.meta.update(
            bead={
                "angle_deg": rounded(math.degrees(self.theta)),
                "center_px": [rounded(self.cx), rounded(self.cy)],
                "width_px": rounded(2 * self.hw),
                "width_mm": rounded(2 * self.hw * gen.mm_per_px),
                "height_mm": rounded(self.bead_h),
                "visible_t_px": [rounded(self.t_lo), rounded(self.t_hi)],
            },
            lighting={"gain": rounded(gain), "gradient_angle_deg": rounded(math.degrees(ga))},
            blur_sigma=rounded(sigma),
            noise_sd=rounded(noise_sd),
        )
        return rgb, depth, self.meta

    def _colourise(self, gray: np.ndarray, mask: np.ndarray, d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Float BGR from grey: plate tint, bead tint, straw/blue heat tint beside the bead (overwrites ``d``)."""
        buf = self.gen.scratch
        plate_tint = 1 + rng.uniform(-0.08, 0.08, 3)
        bead_tint = plate_tint + rng.uniform(-0.1, 0.1, 3)
        haz_tint = np.array([0.12, 0.02, -0.1]) * float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.2, 1.0))
        haz = np.abs(d, out=d)
        haz -= np.float32(self.hw * 1.4)
        np.abs(haz, out=haz)
        haz *= np.float32(-1 / (self.hw * 0.6))
        haz += 1
        np.maximum(haz, 0, out=haz)
        haz *= gray
        # per pixel: bgr = gray * plate_tint + (gray * mask) * (bead - plate tint) + (gray * haz) * haz_tint
        mix = np.stack([plate_tint, bead_tint - plate_tint, haz_tint], axis=1).astype(np.float32)
        merged = cv2.merge([gray, np.multiply(gray, mask, out=buf("tmp")), haz], dst=buf("merged", 3))
        return cv2.transform(merged, mix, dst=buf("rgbf", 3))

    def _depth(self, profile: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Millimetre depth: tilted plate at ~300 mm, minus bead height and defect offsets, noise and holes."""
        gen = self.gen
        tilt_x, tilt_y = (float(v) for v in rng.uniform(-0.006, 0.006, 2))
        dist = np.multiply(gen._xx, np.float32(tilt_x), out=gen.scratch("dist"))
        dist += np.multiply(gen._yy, np.float32(tilt_y), out=gen.scratch("tmp"))
        dist += np.float32(CAMERA_MM + rng.uniform(-10, 10) + 0.5)  # + 0.5: round on the cast below
        profile *= np.float32(self.bead_h)
        dist -= profile
        dist -= self.dh
        cv2.scaleAdd(gen.crop(gen._depth_noise, rng), float(rng.uniform(0.2, 0.5)), dist, dst=dist)
        depth = dist.astype(np.uint16)
        for _ in range(int(rng.integers(1, 6))):  # stereo dropouts
            x, y = int(rng.integers(0, gen.width)), int(rng.integers(0, gen.height))
            axes = (int(rng.integers(2, 12)), int(rng.integers(2, 8)))
            cv2.ellipse(depth, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, 0, -1)
        return depth


class SyntheticCamera(CameraSource):
    """A camera that shows synthetic welds; ``set_scene`` places a part of a given label (None = random)."""

    def __init__(self, seed: int = 0, width: int = 640, height: int = 480, scene: str | None = None) -> None:
        self._gen = SyntheticWeldGenerator(seed=seed, width=width, height=height)
        self._pick = np.random.default_rng([int(seed), 0x5CE4E])
        self._lock = threading.Lock()
        self._scene: str | None = None
        self._frames = 0
        self._closed = False
        self.set_scene(scene)

    @property
    def scene(self) -> str | None:
        """The label shown next, or None for a random label per frame."""
        return self._scene

    def set_scene(self, label: str | None, seed: int | None = None) -> None:
        """Choose what the camera shows next; ValueError for an unknown label.

        A ``seed`` other than the current one starts a new batch of parts: frames from a generator with
        that seed (the demo's fresh evaluation frames come from a seed its training frames never used).
        """
        if label is not None and label not in LABELS:
            raise ValueError(f"unknown scene {label!r}; expected one of {', '.join(LABELS)} or null for random")
        fresh = None
        if seed is not None and seed != self._gen.seed:
            fresh = SyntheticWeldGenerator(seed=seed, width=self._gen.width, height=self._gen.height)
        with self._lock:
            self._scene = label
            if fresh is not None:
                self._gen = fresh

    def read(self) -> Frame:
        """Render the next frame of the current scene."""
        with self._lock:
            if self._closed:
                raise CameraError("synthetic camera is closed")
            label = self._scene or LABELS[int(self._pick.integers(0, len(LABELS)))]
            frame = self._gen.generate(label)
            frame.meta["scene"] = self._scene
            self._frames += 1
            return frame

    def status(self) -> dict:
        """Kind, resolution, seed, current scene and frames served."""
        return {
            "kind": "synthetic",
            "ok": not self._closed,
            "width": self._gen.width,
            "height": self._gen.height,
            "seed": self._gen.seed,
            "scene": self._scene,
            "labels": list(LABELS),
            "frames": self._frames,
        }

    def close(self) -> None:
        """Stop serving frames."""
        with self._lock:
            self._closed = True
