"""Model card: everything the board needs to run a model, stored in the ONNX metadata."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import overload

from shared_schema.anomaly import validate_anomaly
from shared_schema.errors import SchemaError, join_path, optional, require

CARD_FORMAT_VERSION = "1.2"  # 1.1: temperature, thresholds; 1.2: task, extra_outputs, anomaly
METADATA_KEY = "rdk.model_card"
CHANNELS = ("rgb", "rgbd")
RESIZE_METHODS = ("stretch", "letterbox")
INTERPOLATIONS = ("auto", "area", "linear")
ORIENTATIONS = ("none", "landscape")
COLOUR_ORDERS = ("rgb", "bgr")
DEPTH_MODES = ("median_relative", "absolute")
PRECISIONS = ("fp32", "int8")
TASKS = ("classify", "anomaly")


@dataclass(frozen=True)
class InputContract:
    """How an image becomes the model's input tensor.

    Pixels are scaled to [0, 1], then ``(x - mean) / std`` per channel. For ``rgbd`` the depth
    channel is millimetres (0 = no reading) mapped by ``depth_mode``: ``median_relative``
    subtracts the median of valid pixels, ``absolute`` keeps the raw value; the result is
    multiplied by ``depth_scale`` and then normalised with the fourth mean/std entry.

    ``orient="landscape"`` turns a portrait image (height > width) by 90° clockwise before resizing,
    so that elongated parts fill a landscape input. ``interpolation="auto"`` uses area averaging
    when shrinking and bilinear interpolation when enlarging.
    """

    height: int
    width: int
    channels: str = "rgb"
    tensor_name: str = "input"
    resize: str = "stretch"
    interpolation: str = "area"
    colour_order: str = "rgb"
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    depth_mode: str = "median_relative"
    depth_scale: float = 0.1
    orient: str = "none"

    @property
    def num_channels(self) -> int:
        """3 for rgb, 4 for rgbd."""
        return 4 if self.channels == "rgbd" else 3

    @property
    def shape(self) -> list:
        """N x C x H x W with a dynamic batch."""
        return ["batch", self.num_channels, self.height, self.width]

    def __post_init__(self) -> None:
        checks = {
            "channels": (self.channels, CHANNELS),
            "resize": (self.resize, RESIZE_METHODS),
            "interpolation": (self.interpolation, INTERPOLATIONS),
            "colour_order": (self.colour_order, COLOUR_ORDERS),
            "depth_mode": (self.depth_mode, DEPTH_MODES),
            "orient": (self.orient, ORIENTATIONS),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise SchemaError(name, f"{value!r} is not one of {', '.join(allowed)}")
        if not (8 <= self.height <= 4096 and 8 <= self.width <= 4096):
            raise SchemaError("height", f"input size {self.width}x{self.height} is out of range 8..4096")
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) != self.num_channels:
                raise SchemaError(name, f"needs {self.num_channels} values for {self.channels}, got {len(values)}")
        if any(s <= 0 for s in self.std):
            raise SchemaError("std", "every std must be positive")

    def to_dict(self) -> dict:
        """Return the JSON form (with the derived shape, for readers)."""
        return {
            "tensor_name": self.tensor_name,
            "shape": self.shape,
            "height": self.height,
            "width": self.width,
            "channels": self.channels,
            "resize": self.resize,
            "interpolation": self.interpolation,
            "colour_order": self.colour_order,
            "mean": list(self.mean),
            "std": list(self.std),
            "depth_mode": self.depth_mode,
            "depth_scale": self.depth_scale,
            "orient": self.orient,
        }

    @classmethod
    def from_dict(cls, data: dict, where: str = "input") -> InputContract:
        """Parse and validate."""
        num = (int, float)
        try:
            return cls(
                height=require(data, "height", int, where),
                width=require(data, "width", int, where),
                channels=optional(data, "channels", str, where, "rgb"),
                tensor_name=optional(data, "tensor_name", str, where, "input"),
                resize=optional(data, "resize", str, where, "stretch"),
                interpolation=optional(data, "interpolation", str, where, "area"),
                colour_order=optional(data, "colour_order", str, where, "rgb"),
                mean=tuple(float(v) for v in _numbers(data, "mean", where, num)),
                std=tuple(float(v) for v in _numbers(data, "std", where, num)),
                depth_mode=optional(data, "depth_mode", str, where, "median_relative"),
                depth_scale=float(optional(data, "depth_scale", num, where, 0.1)),
                orient=optional(data, "orient", str, where, "none"),
            )
        except SchemaError as exc:
            if exc.field.startswith(where):
                raise
            raise SchemaError(join_path(where, exc.field), exc.message) from None


@dataclass(frozen=True)
class ModelCard:
    """Labels in output order, the schema hash they bind to, the input contract and provenance.

    ``temperature`` calibrates logits (probabilities are ``softmax(logits / temperature)``, see
    ``shared_schema.postprocess``). ``confidence_threshold`` (below it the rules decide) and
    ``review_threshold`` (below it a frame goes to the review queue) are the trainer's
    recommendations from the validation split, in calibrated probability; ``None`` when the
    trainer recommends none (an older card, or no threshold reached the precision target).

    ``task`` is ``classify`` (``output_name`` gives one score per label) or ``anomaly`` (trained on
    the non-defect labels only; ``anomaly`` holds its score normalisation and threshold).
    ``extra_outputs`` names further graph outputs by role, e.g. ``{"cam": "cam"}`` for class
    activation maps or ``{"anomaly_map": "anomaly_map"}``; a reader ignores roles it does not know.
    """

    labels: tuple[str, ...]
    label_schema_hash: str
    input: InputContract
    name: str = "weld-classifier"
    architecture: str = ""
    output_name: str = "logits"
    output_kind: str = "logits"
    precision: str = "fp32"
    temperature: float = 1.0
    confidence_threshold: float | None = None
    review_threshold: float | None = None
    created_at: str = ""
    provenance: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    label_schema: dict | None = None
    task: str = "classify"
    extra_outputs: dict = field(default_factory=dict)
    anomaly: dict | None = None
    card_version: str = CARD_FORMAT_VERSION

    def __post_init__(self) -> None:
        self._check_task()
        if len(self.labels) < 2:
            raise SchemaError("labels", "a model needs at least two output labels")
        if len(set(self.labels)) != len(self.labels):
            raise SchemaError("labels", "duplicate label in output order")
        if self.precision not in PRECISIONS:
            raise SchemaError("precision", f"{self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.output_kind not in ("logits", "probabilities"):
            raise SchemaError("output_kind", f"{self.output_kind!r} is not logits or probabilities")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise SchemaError("temperature", f"must be a finite number above 0, got {self.temperature}")
        if self.output_kind == "probabilities" and self.temperature != 1.0:
            raise SchemaError("temperature", "a temperature applies to logits only; it must be 1 for probabilities")
        for name in ("confidence_threshold", "review_threshold"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise SchemaError(name, f"must be in [0, 1], got {value}")
        confidence, review = self.confidence_threshold, self.review_threshold
        if confidence is not None and review is not None and review < confidence:
            raise SchemaError("review_threshold", f"{review} is below confidence_threshold {confidence}")

    def _check_task(self) -> None:
        if self.task not in TASKS:
            raise SchemaError("task", f"{self.task!r} is not one of {', '.join(TASKS)}")
        for role, name in self.extra_outputs.items():
            if not isinstance(name, str) or not name or name == self.output_name:
                raise SchemaError(f"extra_outputs.{role}", "must name a graph output other than output_name")
        if self.task == "anomaly":
            validate_anomaly(self.anomaly, self.labels)

    def to_dict(self) -> dict:
        """Return the JSON form."""
        out = {
            "card_version": self.card_version,
            "name": self.name,
            "architecture": self.architecture,
            "labels": list(self.labels),
            "label_schema_hash": self.label_schema_hash,
            "input": self.input.to_dict(),
            "output_name": self.output_name,
            "output_kind": self.output_kind,
            "precision": self.precision,
            "temperature": self.temperature,
            "confidence_threshold": self.confidence_threshold,
            "review_threshold": self.review_threshold,
            "created_at": self.created_at,
            "provenance": self.provenance,
            "metrics": self.metrics,
            "task": self.task,
            "extra_outputs": self.extra_outputs,
        }
        if self.anomaly is not None:
            out["anomaly"] = self.anomaly
        if self.label_schema is not None:
            out["label_schema"] = self.label_schema
        return out

    def to_json(self) -> str:
        """Serialise to compact JSON text for the ONNX metadata."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict) -> ModelCard:
        """Parse and validate; an unknown major card version is refused."""
        version = require(data, "card_version", str, "")
        if version.split(".", 1)[0] != CARD_FORMAT_VERSION.split(".", 1)[0]:
            raise SchemaError("card_version", f"model card version {version} is not supported; update the agent")
        labels = require(data, "labels", list, "")
        for i, label in enumerate(labels):
            if not isinstance(label, str):
                raise SchemaError(f"labels[{i}]", "expected str")
        return cls(
            labels=tuple(labels),
            label_schema_hash=require(data, "label_schema_hash", str, ""),
            input=InputContract.from_dict(require(data, "input", dict, "")),
            name=optional(data, "name", str, "", "weld-classifier"),
            architecture=optional(data, "architecture", str, "", ""),
            output_name=optional(data, "output_name", str, "", "logits"),
            output_kind=optional(data, "output_kind", str, "", "logits"),
            precision=optional(data, "precision", str, "", "fp32"),
            temperature=_optional_float(data, "temperature", 1.0),
            confidence_threshold=_optional_float(data, "confidence_threshold"),
            review_threshold=_optional_float(data, "review_threshold"),
            created_at=optional(data, "created_at", str, "", ""),
            provenance=optional(data, "provenance", dict, "", {}),
            metrics=optional(data, "metrics", dict, "", {}),
            label_schema=optional(data, "label_schema", dict, ""),
            task=optional(data, "task", str, "", "classify"),
            extra_outputs=optional(data, "extra_outputs", dict, "", {}),
            anomaly=optional(data, "anomaly", dict, ""),
            card_version=version,
        )

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Parse JSON text; malformed JSON is a SchemaError too."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise SchemaError("", f"model card is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise SchemaError("", "model card must be a JSON object")
        return cls.from_dict(data)


@overload
def _optional_float(data: dict, key: str) -> float | None: ...


@overload
def _optional_float(data: dict, key: str, default: float) -> float: ...


def _optional_float(data: dict, key: str, default: float | None = None) -> float | None:
    value = optional(data, key, (int, float), "")
    if value is None:
        return default
    try:
        return float(value)
    except OverflowError:
        raise SchemaError(key, f"{value} is out of range") from None


def _numbers(data: dict, key: str, where: str, num: tuple) -> list:
    values = require(data, key, list, where)
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, num):
            raise SchemaError(join_path(where, f"{key}[{i}]"), "expected a number")
    return values
