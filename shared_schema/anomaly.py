"""Anomaly models: the card's ``anomaly`` settings, score normalisation, and map geometry.

An anomaly model (card ``task: anomaly``) is trained on the non-defect labels only. Its graph gives
a raw image score (``output_name``, shape N) and a raw anomaly map at the input's resolution
(``extra_outputs["anomaly_map"]``, shape N x 1 x H x W). Validation needs the standard library only;
the normalisation and geometry helpers import numpy and OpenCV when called. The card's ``anomaly`` dict says how to read
them, as anomalib does: raw values are min-max normalised around the threshold chosen on
validation, ``normalised = clip((raw - threshold) / (max - min) + 0.5, 0, 1)``, so the threshold
becomes 0.5 for the image score and the map alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared_schema.errors import SchemaError, join_path, optional, require

if TYPE_CHECKING:  # numpy and OpenCV are imported by the functions that use them: validation is stdlib only
    import numpy as np

    from shared_schema.model_card import InputContract

ANOMALY_METHODS = ("patchcore", "padim")
MAP_ROLE = "anomaly_map"
NORMALISED_THRESHOLD = 0.5


@dataclass(frozen=True)
class ScoreScale:
    """Raw threshold and the raw range used to normalise one kind of score (image or pixel)."""

    threshold: float
    min: float
    max: float

    def normalise(self, raw: np.ndarray | float) -> np.ndarray:
        """Raw scores to [0, 1] with the threshold at 0.5."""
        import numpy as np

        span = self.max - self.min
        return np.clip((np.asarray(raw, dtype=np.float64) - self.threshold) / span + 0.5, 0.0, 1.0)

    def to_dict(self) -> dict:
        """JSON form."""
        return {"threshold": self.threshold, "min": self.min, "max": self.max}

    @classmethod
    def from_dict(cls, data: dict, where: str) -> ScoreScale:
        """Parse and validate: finite numbers, ``min < max``."""
        values = {}
        for key in ("threshold", "min", "max"):
            value = require(data, key, (int, float), where)
            if isinstance(value, bool) or not math.isfinite(float(value)):
                raise SchemaError(join_path(where, key), "expected a finite number")
            values[key] = float(value)
        if not values["min"] < values["max"]:
            raise SchemaError(join_path(where, "max"), f"must be above min ({values['min']}), got {values['max']}")
        return cls(**values)


@dataclass(frozen=True)
class AnomalySettings:
    """The card's ``anomaly`` dict: method, normalisation and thresholds, and what it was trained on."""

    method: str
    image: ScoreScale
    pixel: ScoreScale
    trained_on: tuple[str, ...]
    threshold_rule: str = ""

    def to_dict(self) -> dict:
        """JSON form (the card's ``anomaly`` value)."""
        return {
            "method": self.method,
            "image": self.image.to_dict(),
            "pixel": self.pixel.to_dict(),
            "trained_on": list(self.trained_on),
            "threshold_rule": self.threshold_rule,
        }

    @classmethod
    def from_dict(cls, data: dict, where: str = "anomaly") -> AnomalySettings:
        """Parse and validate; SchemaError names the offending field."""
        if not isinstance(data, dict):
            raise SchemaError(where, "expected an object")
        method = require(data, "method", str, where)
        if method not in ANOMALY_METHODS:
            raise SchemaError(join_path(where, "method"), f"{method!r} is not one of {', '.join(ANOMALY_METHODS)}")
        trained_on = require(data, "trained_on", list, where)
        if not trained_on or not all(isinstance(n, str) and n for n in trained_on):
            raise SchemaError(join_path(where, "trained_on"), "needs the non-empty names of the labels trained on")
        return cls(
            method=method,
            image=ScoreScale.from_dict(require(data, "image", dict, where), join_path(where, "image")),
            pixel=ScoreScale.from_dict(require(data, "pixel", dict, where), join_path(where, "pixel")),
            trained_on=tuple(trained_on),
            threshold_rule=optional(data, "threshold_rule", str, where, ""),
        )


def validate_anomaly(data: dict | None, labels: tuple[str, ...]) -> AnomalySettings:
    """The ``anomaly`` dict of a task-anomaly card, validated; its ``trained_on`` labels must be card labels."""
    if data is None:
        raise SchemaError("anomaly", "an anomaly model needs its score normalisation and threshold")
    settings = AnomalySettings.from_dict(data)
    unknown = [n for n in settings.trained_on if n not in labels]
    if unknown:
        raise SchemaError("anomaly.trained_on", f"{unknown} are not among the card's labels {list(labels)}")
    return settings


def _geometry(contract: InputContract, frame_hw: tuple[int, int]) -> tuple[bool, float, float, int, int, int, int]:
    """(rotated, scale_x, scale_y, left, top, content_w, content_h): how a frame sits in the input."""
    h, w = frame_hw
    rotated = contract.orient == "landscape" and h > w
    if rotated:
        h, w = w, h
    if contract.resize == "stretch":
        return rotated, contract.width / w, contract.height / h, 0, 0, contract.width, contract.height
    scale = min(contract.width / w, contract.height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    return rotated, nw / w, nh / h, (contract.width - nw) // 2, (contract.height - nh) // 2, nw, nh


def input_to_frame(x: float, y: float, contract: InputContract, frame_hw: tuple[int, int]) -> tuple[int, int]:
    """A point of the model input (pixel centre coordinates) in the original frame, as integer (x, y)."""
    import numpy as np

    rotated, sx, sy, left, top, _, _ = _geometry(contract, frame_hw)
    fx, fy = (x + 0.5 - left) / sx - 0.5, (y + 0.5 - top) / sy - 0.5
    h, w = frame_hw
    if rotated:  # the frame was turned 90° clockwise: input (fx, fy) came from frame (fy, h - 1 - fx)
        fx, fy = fy, (h - 1) - fx
    return int(np.clip(round(fx), 0, w - 1)), int(np.clip(round(fy), 0, h - 1))


def map_to_frame(anomaly_map: np.ndarray, contract: InputContract, frame_hw: tuple[int, int]) -> np.ndarray:
    """An H x W map over the model input, cropped to the frame's content and resized onto the frame (h x w)."""
    import cv2
    import numpy as np

    rotated, _, _, left, top, cw, ch = _geometry(contract, frame_hw)
    content = np.ascontiguousarray(anomaly_map[top : top + ch, left : left + cw], dtype=np.float32)
    h, w = frame_hw
    size = (h, w) if rotated else (w, h)
    resized = cv2.resize(content, size, interpolation=cv2.INTER_LINEAR)
    return cv2.rotate(resized, cv2.ROTATE_90_COUNTERCLOCKWISE) if rotated else resized
