"""The station's rubric: what the rule-based evaluator measures against (the agent config's ``rubric``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields


class RubricError(ValueError):
    """A rubric document is invalid; ``field`` names the offending key."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"rubric.{field}: {message}" if field else f"rubric: {message}")


@dataclass(frozen=True)
class Rubric:
    """Targets, tolerances and detector limits. Lengths in mm, areas in mm², at ``mm_per_px`` scale.

    The defaults are tuned on the synthetic frames (80 mm field of view at 640 px, beads 5-11 mm wide and
    1-3 mm high); a real station sets ``mm_per_px`` from its calibration and its own targets.
    """

    mm_per_px: float = 0.125
    target_width_mm: float = 8.0
    width_tolerance_mm: float = 3.5
    target_height_mm: float = 2.0
    height_tolerance_mm: float = 1.3
    min_uniformity: float = 0.80  # contour area / convex hull area of the bead
    max_pores: int = 0
    max_spatter: int = 2
    max_gap_mm: float = 4.0  # longest stretch along the bead axis without bead
    max_undercut_mm: float = 6.0  # longest dark groove along a bead edge
    # detector limits
    bead_contrast: float = 1.06  # bead brightness over the local plate brightness, at least
    bead_min_height_mm: float = 0.35  # with depth: what stands this far out of the plate near the axis is bead
    pore_area_mm2: tuple[float, float] = (0.08, 5.0)
    pore_min_circularity: float = 0.55
    pore_max_brightness: float = 0.62  # a pore is darker than this fraction of the bead around it
    spatter_area_mm2: tuple[float, float] = (0.04, 1.5)
    spatter_min_contrast: float = 22.0  # grey levels above the local mean
    spatter_min_brightness: float = 1.15  # and this much brighter than the plate around it
    groove_max_brightness: float = 0.72  # an undercut groove is darker than this fraction of the plate
    groove_depth_mm: float = 0.4  # or at least this far below the plate in the depth map

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            for v in values:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise RubricError(f.name, f"expected a finite number, got {v!r}")
                if v < 0:
                    raise RubricError(f.name, f"must not be negative, got {v!r}")
        if self.mm_per_px <= 0:
            raise RubricError("mm_per_px", "must be positive")
        for name in ("pore_area_mm2", "spatter_area_mm2"):
            lo, hi = getattr(self, name)
            if lo >= hi:
                raise RubricError(name, f"expected [min, max] with min < max, got [{lo}, {hi}]")
        if not 0 < self.min_uniformity <= 1 or not 0 < self.pore_min_circularity <= 1:
            raise RubricError(
                "min_uniformity" if not 0 < self.min_uniformity <= 1 else "pore_min_circularity", "must lie in (0, 1]"
            )

    @classmethod
    def from_dict(cls, data: dict) -> Rubric:
        """Build from a JSON object; unknown keys and wrong types are refused naming the key."""
        if not isinstance(data, dict):
            raise RubricError("", f"expected a JSON object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        kwargs: dict = {}
        for key, value in data.items():
            if key not in known:
                raise RubricError(key, f"unknown setting; known settings: {', '.join(known)}")
            default = known[key].default
            if isinstance(default, tuple):
                if not isinstance(value, (list, tuple)) or len(value) != 2:
                    raise RubricError(key, f"expected [min, max], got {value!r}")
                value = tuple(value)
            elif isinstance(default, int) and not isinstance(default, bool):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise RubricError(key, f"expected an integer, got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RubricError(key, f"expected a number, got {value!r}")
            kwargs[key] = value
        return cls(**kwargs)

    def to_dict(self) -> dict:
        """The JSON form (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
