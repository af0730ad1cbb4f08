"""P8: stereo depth on rendered weld plates: plate error, bead height by the rules, valid fraction, time.

    .venv/bin/python bench/p8_stereo_depth.py [--quick] [--out FILE]

Twenty scenes (``random_scene`` with fixed seeds: plates at 250-320 mm, beads 1.5-3 mm high and 6-10 mm
wide, varied texture), each rendered by the default rig (640x480, f = 700 px, B = 70 mm) without and with
lens distortion (``StereoRig.distorted()``: barrel distortion and a slight relative rotation), calibrated by
the rig's own calibration, rectified at the source's default working width and matched with the default
``DepthSettings``. Per pair:

* plate error: median |depth - truth| (mm) over valid plate pixels (4 mm or more from the bead) on the band;
* bead height: ``RuleEvaluator`` on the rectified left image with the stereo depth, against the same rules with
  the exact depth (rounded to mm, the same band): the rules' own height measure on both;
* bead height against the truth: the same rules height on the stereo depth against the rendered bead height
  (the rules average the crown's central third, which reads a parabolic ridge ~4 % below its peak);
* valid fraction on the bead band: bead pixels of the band that both cameras see (the strip at the left edge
  that the right camera cannot see has no depth by any method);
* time at 1 OpenCV thread: depth and the rules on the same frame, interleaved, median of the runs.

The RDK X5 figure is an ESTIMATE by the ratio bench/p6_model_size.py uses (peak MAC rate per core of this
x86 core over a Cortex-A55 core at 1.5 GHz), not a measurement on a board; depth and rules scale alike, so
their ratio is the figure that carries over.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np

from bench.common import OUT_DIR, emit, figure, interleave, log, parser
from rdk_agent.camera.stereo.depth import StereoDepth
from rdk_agent.camera.stereo.render import StereoRig, random_scene, render_pair, truth_depth, truth_masks
from rdk_agent.camera.stereo.source import DEFAULT_WORKING_WIDTH
from rdk_agent.inspection.rubric import Rubric
from rdk_agent.inspection.rules import RuleEvaluator

SEED = 8
A55_MAC_PER_CYCLE, A55_GHZ, X86_MAC_PER_CYCLE = 4, 1.5, 16  # as bench/p6_model_size.py


def cpu_ghz() -> float:
    """This machine's clock as /proc/cpuinfo reports it (GHz), as bench/p6_model_size.py reads it."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) / 1000.0
    return 3.0


def measure_pair(index: int, rig: StereoRig, runs: int) -> dict:
    """Render scene ``index`` with ``rig`` and measure everything on it."""
    scene = random_scene(np.random.default_rng([SEED, index]))
    raw_left, raw_right = render_pair(scene, rig)
    rect = rig.calibration().rectification(min(1.0, DEFAULT_WORKING_WIDTH / rig.width))
    left, right = rect.rectify(raw_left, raw_right)
    truth = truth_depth(scene, rig, rect)
    bead, plate = truth_masks(scene, rig, rect)
    matcher = StereoDepth(rect.focal_px, rect.baseline_mm)
    result = matcher.compute(left, right)
    y0, y1 = result.band_rows
    band = np.zeros_like(bead)
    band[y0:y1] = True
    seen = np.arange(truth.shape[1])[None, :] - rect.focal_px * rect.baseline_mm / truth >= 1
    depth = result.depth
    valid = depth > 0
    plate_err = np.abs(depth.astype(np.float32) - truth)[valid & plate & band]
    rules = RuleEvaluator(Rubric(mm_per_px=scene.distance_mm / rect.focal_px))
    exact = np.where(band, np.rint(truth), 0).astype(np.uint16)
    h_stereo = rules.evaluate(left, depth).measures.get("height_mm")
    h_exact = rules.evaluate(left, exact).measures.get("height_mm")
    times = interleave(
        {
            "depth": lambda: matcher.compute(left, right).ms / 1000,
            "rules": lambda: rules.evaluate(left, depth).latency_ms / 1000,
        },
        runs,
    )
    return {
        "index": index,
        "distance_mm": round(scene.distance_mm, 1),
        "bead_height_mm": round(scene.bead_height_mm, 3),
        "bead_width_mm": round(scene.bead_width_mm, 2),
        "texture_scale": round(scene.texture_scale, 2),
        "plate_median_abs_mm": round(float(np.median(plate_err)), 3) if plate_err.size else None,
        "plate_mean_mm": round(float(np.mean((depth.astype(np.float32) - truth)[valid & plate & band])), 3),
        "height_stereo_mm": h_stereo,
        "height_exact_mm": h_exact,
        "height_error_mm": None if h_stereo is None or h_exact is None else round(h_stereo - h_exact, 3),
        "bead_valid": round(float(valid[bead & band & seen].mean()), 4),
        "band_valid": round(result.valid_fraction, 4),
        "depth_ms": round(statistics.median(times["depth"]) * 1000, 2),
        "rules_ms": round(statistics.median(times["rules"]) * 1000, 2),
    }


def summarise(rows: list[dict], label: str) -> list[dict]:
    """The four figures of one rig."""
    plate = [r["plate_median_abs_mm"] for r in rows]
    heights = [r["height_error_mm"] for r in rows]
    missing = sum(h is None for h in heights)
    worst_h = max((abs(h) for h in heights if h is not None), default=float("nan"))
    truth = [None if r["height_stereo_mm"] is None else r["height_stereo_mm"] - r["bead_height_mm"] for r in rows]
    worst_t = max((abs(h) for h in truth if h is not None), default=float("nan"))
    bead_valid = [r["bead_valid"] for r in rows]
    depth_ms = statistics.median(r["depth_ms"] for r in rows)
    rules_ms = statistics.median(r["rules_ms"] for r in rows)
    per_pair = [r["depth_ms"] / r["rules_ms"] for r in rows]
    factor = X86_MAC_PER_CYCLE * cpu_ghz() / (A55_MAC_PER_CYCLE * A55_GHZ)
    n = len(rows)
    return [
        figure(
            f"P8a-{label}",
            f"plate depth error, worst pair's median |error| ({n} pairs, {label})",
            ("worst median", round(max(plate), 3), "mm"),
            notes=[f"median over pairs {statistics.median(plate):.3f} mm; per pair: {plate}"],
            goal="<= 0.5",
            value=round(max(plate), 3),
        ),
        figure(
            f"P8b-{label}",
            f"bead height, stereo vs exact depth through the rules ({n} pairs, {label})",
            ("worst |error|", round(worst_h, 3), "mm"),
            notes=[f"{missing} pairs without a rules height; errors: {heights}"],
            goal="<= 0.5",
            value=round(worst_h, 3) if missing == 0 else float("inf"),
        ),
        figure(
            f"P8e-{label}",
            f"bead height through the rules on stereo depth vs the rendered bead height ({n} pairs, {label})",
            ("worst |error|", round(worst_t, 3), "mm"),
            notes=[f"errors: {[None if h is None else round(h, 3) for h in truth]}"],
            goal="<= 0.5",
            value=round(worst_t, 3) if None not in truth else float("inf"),
        ),
        figure(
            f"P8c-{label}",
            f"valid depth on the bead band, worst pair ({n} pairs, {label})",
            ("worst", round(min(bead_valid), 4), ""),
            notes=[f"band (plate and bead) valid, worst pair: {min(r['band_valid'] for r in rows):.4f}"],
            goal=">= 0.95",
            value=round(min(bead_valid), 4),
        ),
        figure(
            f"P8d-{label}",
            f"depth time vs the rules' time on the same frame, 1 thread ({n} pairs, {label})",
            ("depth", round(depth_ms, 2), "ms"),
            ("rules", round(rules_ms, 2), "ms"),
            ratio=depth_ms / rules_ms,
            goal="<= 1.0",
            notes=[
                f"per pair, depth/rules: median {statistics.median(per_pair):.2f}, worst {max(per_pair):.2f}, "
                f"{sum(x > 1 for x in per_pair)} of {n} pairs above 1",
                f"per-pair medians interleaved; A55 factor {factor:.1f} ({X86_MAC_PER_CYCLE} MAC/cycle x "
                f"{cpu_ghz():.2f} GHz / {A55_MAC_PER_CYCLE} x {A55_GHZ} GHz): ESTIMATE on the RDK X5 CPU "
                f"~{depth_ms * factor:.0f} ms depth, ~{rules_ms * factor:.0f} ms rules per frame at 1 thread",
            ],
            details={"rows": rows, "a55_factor": round(factor, 2), "load": os.getloadavg()},
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run P8 on both rigs and print the figures."""
    args = parser(__doc__).parse_args(argv)
    cv2.setNumThreads(1)
    count, runs = (4, 3) if args.quick else (20, 7)
    figures = []
    for label, rig in (("pinhole", StereoRig()), ("distorted", StereoRig.distorted())):
        rows = []
        for i in range(count):
            rows.append(measure_pair(i, rig, runs))
            log(f"P8 {label} pair {i}: {rows[-1]}")
        figures.extend(summarise(rows, label))
    emit(figures, args.out or OUT_DIR / "p8_stereo_depth.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
