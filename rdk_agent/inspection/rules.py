"""The station's rule-based evaluator: the fallback engine and the baseline a learned model must beat.

``RuleEvaluator(rubric, schema).evaluate(bgr, depth)`` segments the bead (see ``bead.py``), measures width,
uniformity and height, counts pores on the bead (SimpleBlobDetector) and spatter on the base metal (adaptive
threshold + area filter), finds gaps and edge grooves, and checks all against the ``Rubric``.

Label mapping: the first failed check among gap, undercut, porosity, spatter (that order: a missing bead
explains everything else) whose name is a label of the schema; otherwise the schema's first non-defect label
("good" for welds), also when only width, height or uniformity fail (``passed`` is then False). Under a schema
that has none of those four names the rules give pass/fail only: the first non-defect label on a pass, else
``None``. ``score`` is 0.5 + half the smallest normalised margin over the checks: it is >= 0.5 exactly on a pass.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from rdk_agent.inspection.bead import Bead, crown_mm, fit_plate, longest_groove_mm, odd, refine_with_depth, segment
from rdk_agent.inspection.rubric import Rubric
from shared_schema import LabelSchema, default_weld_schema

DEFECT_LABELS = ("gap", "undercut", "porosity", "spatter")  # mapping priority
_MIN_SIDE = 16  # smaller images cannot show a bead


@dataclass
class RuleResult:
    """The rules' verdict on one frame."""

    passed: bool
    score: float
    label: str | None
    defects: list[str]
    measures: dict
    reasons: list[str] = field(default_factory=list)
    latency_ms: float = 0.0

    def to_dict(self) -> dict:
        """JSON form."""
        return {
            "passed": self.passed,
            "score": round(self.score, 4),
            "label": self.label,
            "defects": list(self.defects),
            "reasons": list(self.reasons),
            "measures": dict(self.measures),
            "latency_ms": round(self.latency_ms, 3),
        }


def _as_bgr(image: np.ndarray) -> np.ndarray | None:
    """Any 2-D/3-D numeric array as 8-bit BGR; None when it is not an image at all."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.size == 0 or not np.issubdtype(image.dtype, np.number):
        return None
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.nan_to_num(image.astype(np.float32))
        if image.max() <= 1.0:
            image = image * 255
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image[:, :, :3]) if channels >= 3 else None


class RuleEvaluator:
    """Measures a weld frame with OpenCV and grades it with a :class:`Rubric`; never raises on odd images."""

    def __init__(self, rubric: Rubric | None = None, schema: LabelSchema | None = None) -> None:
        self.rubric = rubric or Rubric()
        self.schema = schema or default_weld_schema()
        self._ok_label = next((lab.name for lab in self.schema.labels if not lab.is_defect), None)
        self._weld = any(name in self.schema for name in DEFECT_LABELS)
        px2 = self.rubric.mm_per_px**2
        params = cv2.SimpleBlobDetector.Params()
        params.filterByColor, params.blobColor = True, 0
        params.minThreshold, params.thresholdStep = 10, 10
        params.maxThreshold = max(20.0, self.rubric.pore_max_brightness * 128)
        params.minRepeatability = 2
        params.filterByArea = True
        params.minArea, params.maxArea = (a / px2 for a in self.rubric.pore_area_mm2)
        params.filterByCircularity, params.minCircularity = True, self.rubric.pore_min_circularity
        params.filterByInertia, params.minInertiaRatio = True, 0.3
        params.filterByConvexity, params.minConvexity = True, 0.7
        params.minDistBetweenBlobs = 2
        self._pore_params = params  # a detector per call: evaluate() runs on several threads at once

    def evaluate(self, rgb_bgr: np.ndarray, depth: np.ndarray | None = None) -> RuleResult:
        """Grade one frame: 8-bit BGR (grey and BGRA accepted) and optional uint16 depth in mm (0 = none)."""
        started = time.perf_counter()
        image = _as_bgr(rgb_bgr)
        if image is None or min(image.shape[:2]) < _MIN_SIDE:
            result = self._grade({"bead_found": False}, "image too small or not an image")
        else:
            if depth is not None:
                depth = np.asarray(depth)
                if depth.shape != image.shape[:2] or depth.ndim != 2:
                    depth = None
            result = self._grade(self._measure(image, depth))
        result.latency_ms = (time.perf_counter() - started) * 1000
        return result

    def _measure(self, image: np.ndarray, depth: np.ndarray | None) -> dict:
        r = self.rubric
        px = r.mm_per_px
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        bead = segment(gray, r)
        plate = height = None
        sag_mm = 0.0
        if bead.found and depth is not None:
            depth = depth.astype(np.uint16, copy=False)
            plate = fit_plate(depth, bead, r)
            if plate is not None:
                bead = refine_with_depth(bead, depth, plate, r)
                height, sag_mm = crown_mm(depth, bead, plate, r)
        measures: dict = {"bead_found": bead.found, "spatter": self._count_spatter(gray, bead)}
        if not bead.found:
            return measures
        measures.update(
            width_mm=round(bead.width_px * px, 3),
            length_mm=round(bead.length_px * px, 3),
            uniformity=round(bead.uniformity, 4),
            angle_deg=round(bead.angle_deg, 2),
            pieces=bead.pieces,
            gap_mm=round(max(bead.gap_px * px, sag_mm), 3),
            pores=self._count_pores(bead),
            undercut_mm=round(longest_groove_mm(bead, depth, plate, r), 3),
            height_mm=None if height is None else round(height, 3),
        )
        return measures

    def _count_pores(self, bead: Bead) -> int:
        """Dark round blobs on the bead, relative to the bead's own local brightness."""
        px = self.rubric.mm_per_px
        inside = cv2.erode(bead.mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))).astype(np.float32) / 255
        box = (odd(2.0 / px),) * 2  # the bead's own brightness over ~2 mm around each pixel
        local = cv2.blur(bead.norm * inside, box) / np.maximum(cv2.blur(inside, box), 1e-3)
        rel = np.where(inside > 0, bead.norm / np.maximum(local, 1e-3), 1.0)
        view = np.clip(rel * 128, 0, 255).astype(np.uint8)
        return len(cv2.SimpleBlobDetector.create(self._pore_params).detect(view))

    def _count_spatter(self, gray: np.ndarray, bead: Bead) -> int:
        """Small, compact bright blobs on the base metal outside the (dilated) bead."""
        r = self.rubric
        px2 = r.mm_per_px**2
        block = max(3, int(2.0 / r.mm_per_px) // 2 * 2 + 1)
        bright = cv2.adaptiveThreshold(
            cv2.GaussianBlur(gray, (3, 3), 0),
            255,
            cv2.ADAPTIVE_THRESH_MEAN_C,
            cv2.THRESH_BINARY,
            block,
            -r.spatter_min_contrast,
        )
        bright[bead.norm < r.spatter_min_brightness] = 0  # brighter than the plate itself, not just than a shadow
        if bead.found:
            grow = odd(1.5 / r.mm_per_px)
            bright[cv2.dilate(bead.mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow))) > 0] = 0
        n, _, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
        lo, hi = (a / px2 for a in r.spatter_area_mm2)
        area = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
        bw, bh = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
        compact = (np.maximum(bw, bh) <= 3 * np.minimum(bw, bh)) & (area >= 0.4 * bw * bh)
        return int(((area >= lo) & (area <= hi) & compact).sum()) if n > 1 else 0

    def _grade(self, m: dict, reason: str = "") -> RuleResult:
        """Check measures against the rubric, then label and score.

        Each check is (defect, value, limit, scale, message) and fails when value > limit; counts use the
        limit + 0.5 so that the margin (limit - value) / scale is positive exactly when the check passes.
        """
        r = self.rubric
        checks: list[tuple[str, float, float, float, str]] = []  # name, value, limit, scale, message
        if not m["bead_found"]:
            checks.append(("gap", 1.0, 0.0, 1.0, reason or "no weld bead found"))
        else:
            checks.append(("gap", m["gap_mm"], r.max_gap_mm, r.max_gap_mm, f"bead broken for {m['gap_mm']:.1f} mm"))
            checks.append(
                (
                    "undercut",
                    m["undercut_mm"],
                    r.max_undercut_mm,
                    r.max_undercut_mm,
                    f"groove along the bead edge for {m['undercut_mm']:.1f} mm",
                )
            )
            checks.append(("porosity", m["pores"], r.max_pores + 0.5, r.max_pores + 2, f"{m['pores']} pores"))
            dev = abs(m["width_mm"] - r.target_width_mm)
            checks.append(
                (
                    "width",
                    dev,
                    r.width_tolerance_mm,
                    r.width_tolerance_mm,
                    f"bead width {m['width_mm']:.1f} mm (target {r.target_width_mm}±{r.width_tolerance_mm})",
                )
            )
            checks.append(
                (
                    "uniformity",
                    r.min_uniformity - m["uniformity"],
                    0.0,
                    r.min_uniformity,
                    f"bead uniformity {m['uniformity']:.2f} < {r.min_uniformity}",
                )
            )
            if m["height_mm"] is not None:
                dev = abs(m["height_mm"] - r.target_height_mm)
                checks.append(
                    (
                        "height",
                        dev,
                        r.height_tolerance_mm,
                        r.height_tolerance_mm,
                        f"bead height {m['height_mm']:.1f} mm (target {r.target_height_mm}±{r.height_tolerance_mm})",
                    )
                )
        if "spatter" in m:
            checks.append(
                ("spatter", m["spatter"], r.max_spatter + 0.5, r.max_spatter + 4, f"{m['spatter']} spatter droplets")
            )
        failed = [c for c in checks if c[1] > c[2]]
        margin = min(max(-1.0, min(1.0, (limit - value) / max(scale, 1e-9))) for _, value, limit, scale, _ in checks)
        defects = [c[0] for c in failed]
        mapped = next((name for name in DEFECT_LABELS if name in defects and name in self.schema), None)
        label = mapped if mapped is not None else self._ok_label if (not failed or self._weld) else None
        return RuleResult(
            passed=not failed,
            score=0.5 + 0.5 * margin if math.isfinite(margin) else 0.0,
            label=label,
            defects=defects,
            measures=m,
            reasons=[c[4] for c in failed],
        )
