"""The confidence and review thresholds in force for a model, and where each comes from.

Each threshold is taken from, in order: the station's setting (``inspection.confidence_threshold``
or ``inspection.review_threshold`` in the agent config), the serving model card's recommendation
(chosen by the trainer on its validation split), then the defaults 0.6 / 0.75. A review threshold
that the station did not set is never below the confidence threshold in force: a frame the rules
decide because the model is unsure also goes to the review queue. It is then raised to the
confidence threshold and its source reads ``confidence_threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdk_agent.inspection.settings import InspectionSettings
from shared_schema import ModelCard

DEFAULT_CONFIDENCE_THRESHOLD = 0.6
DEFAULT_REVIEW_THRESHOLD = 0.75


@dataclass(frozen=True)
class Thresholds:
    """Thresholds in calibrated probability, with their sources (station, card, default, confidence_threshold)."""

    confidence: float
    review: float
    confidence_source: str
    review_source: str

    def to_dict(self) -> dict:
        """JSON form for inspection results and the model API."""
        return {
            "confidence": self.confidence,
            "review": self.review,
            "source": {"confidence": self.confidence_source, "review": self.review_source},
        }


def _pick(station: float | None, card: float | None, default: float) -> tuple[float, str]:
    if station is not None:
        return station, "station"
    if card is not None:
        return card, "card"
    return default, "default"


def resolve_thresholds(settings: InspectionSettings, card: ModelCard | None) -> Thresholds:
    """The thresholds in force for a model with ``card`` (None: no model serves) under ``settings``."""
    confidence, confidence_source = _pick(
        settings.confidence_threshold,
        card.confidence_threshold if card is not None else None,
        DEFAULT_CONFIDENCE_THRESHOLD,
    )
    review, review_source = _pick(
        settings.review_threshold, card.review_threshold if card is not None else None, DEFAULT_REVIEW_THRESHOLD
    )
    if review_source != "station" and review < confidence:
        review, review_source = confidence, "confidence_threshold"
    return Thresholds(confidence, review, confidence_source, review_source)


def needs_review(result: dict) -> bool:
    """True when the model ran for inspection ``result`` and its confidence is below the review threshold in force."""
    onnx = result.get("onnx")
    return onnx is not None and onnx["confidence"] < result["thresholds"]["review"]
