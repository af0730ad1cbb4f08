"""What the synthetic camera draws on a weld: the defect of each label, and the nuisances on every frame.

Each function draws into a scene's layers (``dark`` multiplies the image, ``bright`` adds to it, ``dh`` offsets
the height in mm) and records what it drew in ``scene.meta``. Severities run from blatant to subtle, as on a
real line. Every defect record has ``box_px`` ``[x0, y0, x1, y1]``, the frame pixels it covers (inclusive);
a gap also has ``polygon_px``, the corners of the stretch where the bead is missing or thinned (its tapered
ends included).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from rdk_agent.camera.synthetic import _Scene


def rounded(value: float) -> float:
    """A plain float with three decimals, for the JSON meta."""
    return round(float(value), 3)


def _box(x0: float, y0: float, x1: float, y1: float) -> list[int]:
    return [math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)]


def draw_gap(scene: _Scene, t: np.ndarray) -> np.ndarray:
    """Gate (0 inside the gap, 1 elsewhere, tapered ends) for a break in the bead; draws the seam."""
    rng = scene.rng
    span = scene.t_hi - scene.t_lo
    length = float(rng.uniform(0.06, 0.3)) * span
    centre = float(rng.uniform(scene.t_lo + 0.2 * span + length / 2, scene.t_hi - 0.2 * span - length / 2))
    fill = float(rng.uniform(0.15, 0.35)) if rng.random() < 0.35 else 0.0  # a thin, low bead may bridge it
    taper = float(rng.uniform(4, 12)) * scene.scale
    gate = np.subtract(t, np.float32(centre), out=scene.gen.scratch("gate"))
    np.abs(gate, out=gate)
    gate -= np.float32(length / 2)
    gate *= np.float32(1 / taper)
    np.clip(gate, 0, 1, out=gate)
    if fill:
        gate *= np.float32(1 - fill)
        gate += np.float32(fill)
    # the unwelded joint seam shows through the gap
    a, b = scene.at(centre - length / 2, 0), scene.at(centre + length / 2, 0)
    cv2.line(scene.dark, a, b, float(rng.uniform(0.45, 0.75)), max(1, round(rng.uniform(1, 3) * scene.scale)))
    across, along = scene.hw * (1 + scene.wobble), length / 2 + taper  # the bead is thinned up to the taper's end
    corners = [scene.at(centre + dt, dd) for dt in (-along, along) for dd in (-across, across)]
    polygon = [list(corners[i]) for i in (0, 1, 3, 2)]
    xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
    scene.meta["defects"].append(
        {
            "type": "gap",
            "start_px": list(a),
            "end_px": list(b),
            "length_px": rounded(length),
            "fill": rounded(fill),
            "polygon_px": polygon,
            "box_px": _box(min(xs), min(ys), max(xs), max(ys)),
        }
    )
    return gate


def draw_defects(scene: _Scene) -> None:
    """Draw the frame label's defect into the scene's layers and record its geometry in the meta."""
    rng, meta = scene.rng, scene.meta
    span = scene.t_hi - scene.t_lo
    if scene.label == "porosity":
        for _ in range(int(rng.integers(1, 7))):
            r = float(rng.uniform(1.8, 6.0)) * scene.scale
            x, y = scene.inside(lambda: (rng.uniform(scene.t_lo, scene.t_hi), rng.uniform(-0.55, 0.55) * scene.hw))
            depth_mm = float(rng.uniform(0.3, 1.5))
            # round gas pores, and now and then an elongated one (a wormhole)
            axes = (round(r * (rng.uniform(1.5, 2.5) if rng.random() < 0.25 else 1.0)), round(r))
            angle = float(rng.uniform(0, 180))
            cv2.ellipse(scene.dark, (x, y), axes, angle, 0, 360, float(rng.uniform(0.15, 0.6)), -1)
            cv2.ellipse(scene.dh, (x, y), axes, angle, 0, 360, -depth_mm, -1)
            a = max(axes)
            meta["defects"].append(
                {
                    "type": "pore",
                    "x": x,
                    "y": y,
                    "r_px": rounded(r),
                    "depth_mm": rounded(depth_mm),
                    "box_px": _box(x - a, y - a, x + a, y + a),
                }
            )
    elif scene.label == "spatter":
        for _ in range(int(rng.integers(3, 16))):
            r = float(rng.uniform(1.5, 4.0)) * scene.scale
            x, y = scene.inside(
                lambda: (
                    rng.uniform(scene.t_lo, scene.t_hi),
                    (scene.hw * rng.uniform(1.0, 1.15) + rng.exponential(30) * scene.scale) * rng.choice([-1.0, 1.0]),
                )
            )
            cv2.circle(scene.bright, (x, y), round(r), float(rng.uniform(35, 110)), -1)
            cv2.circle(scene.dark, (x + 1, y + 1), round(r) + 1, float(rng.uniform(0.6, 0.85)), -1)
            cv2.circle(scene.dh, (x, y), round(r), float(rng.uniform(0.3, 1.0)), -1)
            rr = round(r)
            meta["defects"].append(
                {"type": "droplet", "x": x, "y": y, "r_px": rounded(r), "box_px": _box(x - rr, y - rr, x + rr, y + rr)}
            )
    elif scene.label == "undercut":
        side = float(rng.choice([-1.0, 1.0]))
        length = float(rng.uniform(0.2, 1.0)) * span
        start = float(rng.uniform(scene.t_lo, scene.t_hi - length))
        width = max(2, round(rng.uniform(1.5, 4.5) * scene.scale))
        depth_mm = float(rng.uniform(0.2, 0.9))
        pts = [
            scene.at(tt, side * (scene.half_width(tt) + width / 2 + rng.normal(0, 0.7)))
            for tt in np.linspace(start, start + length, 24)
        ]
        line = np.array([p for p in pts if scene.is_inside(*p, margin=0)] or pts[:1], np.int32)
        cv2.polylines(scene.dark, [line], False, float(rng.uniform(0.35, 0.75)), width)
        cv2.polylines(scene.dh, [line], False, -depth_mm - scene.bead_h * 0.05, width)
        meta["defects"].append(
            {
                "type": "undercut",
                "side": int(side),
                "start_px": line[0].tolist(),
                "end_px": line[-1].tolist(),
                "width_px": width,
                "depth_mm": rounded(depth_mm),
                "box_px": _box(
                    line[:, 0].min() - width / 2,
                    line[:, 1].min() - width / 2,
                    line[:, 0].max() + width / 2,
                    line[:, 1].max() + width / 2,
                ),
            }
        )


def draw_nuisances(scene: _Scene) -> None:
    """Distractors drawn on every label: scale and oxide spots, scratches, glare, dust, toe shadows."""
    rng, h, w = scene.rng, scene.gen.height, scene.gen.width
    for _ in range(int(rng.integers(0, 5))):  # irregular dark scale / oxide spots, larger and fainter than pores
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        axes = (round(rng.uniform(6, 22) * scene.scale), round(rng.uniform(3, 10) * scene.scale))
        cv2.ellipse(scene.dark, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.7, 0.88)), -1)
        scene.meta["nuisances"].append({"type": "scale", "x": x, "y": y})
    for _ in range(int(rng.integers(0, 3))):  # scratches on the plate
        a = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        ang, ln = rng.uniform(0, math.pi), rng.uniform(40, 200) * scene.scale
        b = (round(a[0] + ln * math.cos(ang)), round(a[1] + ln * math.sin(ang)))
        cv2.line(scene.bright, a, b, float(rng.uniform(-35, 35)), 1)
        scene.meta["nuisances"].append({"type": "scratch", "from": list(a), "to": list(b)})
    if rng.random() < 0.35:  # a broad glare patch from a lamp
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = float(rng.uniform(40, 120)) * scene.scale
        y0, y1, x0, x1 = max(0, y - round(3 * r)), y + round(3 * r), max(0, x - round(3 * r)), x + round(3 * r)
        yy, xx = np.ogrid[y0 : min(y1, h), x0 : min(x1, w)]
        glare = np.exp(((xx - x) ** 2 + (yy - y) ** 2) * (-1 / (2 * r * r))).astype(np.float32)
        scene.bright[y0:y1, x0:x1] += glare * np.float32(rng.uniform(20, 60))
        scene.meta["nuisances"].append({"type": "glare", "x": x, "y": y, "r_px": rounded(r)})
    for _ in range(int(rng.integers(0, 3))):  # a dust speck or two
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.circle(scene.bright, (x, y), int(rng.integers(1, 3)), float(rng.uniform(30, 80)), -1)
        scene.meta["nuisances"].append({"type": "dust", "x": x, "y": y})
    for _ in range(int(rng.integers(0, 3))):  # faint round oxide spots on the bead itself: not pores (no depth)
        x, y = scene.inside(lambda: (rng.uniform(scene.t_lo, scene.t_hi), rng.uniform(-0.5, 0.5) * scene.hw))
        cv2.circle(scene.dark, (x, y), round(rng.uniform(2.5, 7) * scene.scale), float(rng.uniform(0.62, 0.85)), -1)
        scene.meta["nuisances"].append({"type": "oxide", "x": x, "y": y})
    if rng.random() < 0.3:  # a soft shadow line along a bead toe: looks like undercut, is not one (no depth)
        side, start = float(rng.choice([-1.0, 1.0])), float(rng.uniform(scene.t_lo, scene.t_hi))
        pts = [scene.at(t, side * (scene.half_width(t) + 1)) for t in np.linspace(start, scene.t_hi, 12)]
        cv2.polylines(scene.dark, [np.array(pts, np.int32)], False, float(rng.uniform(0.72, 0.9)), 2)
        scene.meta["nuisances"].append({"type": "toe_shadow", "side": int(side)})
