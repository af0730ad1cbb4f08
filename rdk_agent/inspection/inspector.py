"""Inspector: ONNX model first, rule-based evaluator as the fallback, and the reason every time.

For each frame the inspector takes the serving model once (so a hot swap never disturbs it),
runs it under a deadline, and lets the rules decide when there is no usable answer:
``no_model``, ``load_failed``, ``schema_mismatch``, ``inference_error``, ``timeout`` or
``low_confidence``. The confidence threshold for ``low_confidence`` and the review threshold are
the station's settings, else the serving model card's recommendations, else the defaults (see
``rdk_agent.inspection.thresholds``); every result says which are in force. With
``rules="always"`` the rules run on every frame, so an operator always sees their measures next
to the model's probabilities; with ``rules="on_fallback"`` they run only when the model cannot
decide (``rules`` is then ``null`` in a result the model decided).
Thread-safe: waitress calls it from many threads.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from rdk_agent.inspection.anomaly_slot import AnomalySlot
from rdk_agent.inspection.deadline import DeadlineWatchdog
from rdk_agent.inspection.heatmap import build_heatmap
from rdk_agent.inspection.model_manager import ModelManager
from rdk_agent.inspection.onnx_model import InferenceError, Prediction
from rdk_agent.inspection.settings import InspectionSettings
from rdk_agent.inspection.thresholds import resolve_thresholds
from rdk_agent.telemetry import Telemetry

log = logging.getLogger(__name__)

FALLBACK_REASONS = ("no_model", "load_failed", "schema_mismatch", "inference_error", "timeout", "low_confidence")


class RuleEvaluating(Protocol):
    """What the inspector needs from ``rdk_agent.inspection.rules.RuleEvaluator``."""

    def evaluate(self, rgb: np.ndarray, depth: np.ndarray | None) -> Any: ...


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


class Inspector:
    """Decides each frame with the serving model or the rules; counts results in telemetry."""

    def __init__(
        self,
        models: ModelManager,
        rules: RuleEvaluating | None,
        settings: InspectionSettings | None = None,
        telemetry: Telemetry | None = None,
        anomaly: AnomalySlot | None = None,
    ) -> None:
        self.models = models
        self.anomaly = anomaly  # the anomaly model beside the classifier (anomaly.onnx), when the agent has the slot
        self.rules = rules
        self.settings = settings or models.settings
        self.telemetry = telemetry or models.telemetry
        self.watchdog = DeadlineWatchdog()
        self._always_rules = rules is not None and self.settings.rules == "always"
        parallel = self._always_rules and self.settings.parallel_rules
        self._rule_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rules") if parallel else None

    def close(self) -> None:
        """Stop the helper threads."""
        self.watchdog.stop()
        if self._rule_pool is not None:
            self._rule_pool.shutdown(wait=False)

    def inspect(self, rgb: np.ndarray, depth: np.ndarray | None = None, decode_ms: float = 0.0) -> dict:
        """Inspect one BGR frame (and optional uint16 depth in mm); returns the JSON-ready result."""
        started = time.perf_counter()
        rules_future: Future | None = None
        if self._rule_pool is not None:
            rules_future = self._rule_pool.submit(self._run_rules, rgb, depth)
        active = self.models.active  # read once: this request stays on this model even if a swap happens
        thresholds = resolve_thresholds(self.settings, active.classifier.card if active is not None else None)
        prediction, reason, error = self._run_model(active, rgb, depth, thresholds.confidence)
        if rules_future is not None:
            rule_dict, rule_label, rules_s = rules_future.result()
        elif self.rules is not None and (self._always_rules or reason is not None):
            rule_dict, rule_label, rules_s = self._run_rules(rgb, depth)
        else:
            rule_dict, rule_label, rules_s = None, None, 0.0

        confidence: float | None
        if reason is None and prediction is not None:
            engine, label, confidence = "onnx", prediction.label, prediction.confidence
        else:
            engine, label = "rules", rule_label
            confidence = rule_dict.get("score") if rule_dict else None
        heatmap, heatmap_s = self._heatmap(active, prediction, rgb)
        anomaly = self.anomaly.inspect(rgb, depth, self.watchdog) if self.anomaly is not None else None
        total_s = time.perf_counter() - started
        result = {
            "timestamp": time.time(),
            "label": label,
            "confidence": round(float(confidence), 6) if isinstance(confidence, (int, float)) else None,
            "engine": engine,
            "fallback_reason": reason,
            "probabilities": prediction.by_name() if prediction is not None else {},
            "model": self._model_ref(active),
            "thresholds": thresholds.to_dict(),
            "onnx": {"label": prediction.label, "confidence": round(prediction.confidence, 6)} if prediction else None,
            "rules": rule_dict,
            "error": error,
            "heatmap": heatmap,
            "latency_ms": {
                "decode": round(decode_ms, 3),
                "preprocess": round(prediction.preprocess_ms, 3) if prediction else 0.0,
                "inference": round(prediction.inference_ms, 3) if prediction else 0.0,
                "rules": _ms(rules_s),
                "heatmap": _ms(heatmap_s),
                "total": round(decode_ms + total_s * 1000.0, 3),
            },
        }
        if anomaly is not None:
            result["anomaly"] = anomaly  # {score, threshold, anomalous, peak, engine, fallback_reason, ...}
        self.telemetry.record_inspection(engine, label, reason, (decode_ms / 1000.0) + total_s)
        return result

    def _run_model(
        self, active, rgb, depth, confidence_threshold: float
    ) -> tuple[Prediction | None, str | None, str | None]:
        if active is None:
            return None, self.models.unavailable_reason(), None
        if not active.health.available():
            return None, "timeout", "model rests after repeated timeouts"
        try:
            with self.watchdog.deadline(self.settings.timeout_ms / 1000.0) as options:
                prediction = active.classifier.predict(rgb, depth, options)
        except InferenceError as exc:
            if exc.timed_out:
                active.health.record_timeout()
                return None, "timeout", f"inference exceeded {self.settings.timeout_ms:g} ms"
            log.warning("inference failed on model %s: %s", active.classifier.sha256[:12], exc)
            return None, "inference_error", str(exc)
        active.health.record_success()
        if prediction.confidence < confidence_threshold:
            return prediction, "low_confidence", None
        return prediction, None, None

    @staticmethod
    def _heatmap(active, prediction: Prediction | None, rgb: np.ndarray) -> tuple[dict | None, float]:
        """The model's heat map of its predicted class, when it gave class maps; None otherwise or on bad maps."""
        if prediction is None or prediction.cam is None:
            return None, 0.0
        started = time.perf_counter()
        card = active.classifier.card
        try:
            heatmap = build_heatmap(
                prediction.cam,
                prediction.index,
                prediction.label,
                rgb.shape,
                card.input,
                card.provenance,
                prediction.cam_fine,
            )
        except ValueError as exc:
            log.warning("no heat map from model %s: %s", active.classifier.sha256[:12], exc)
            heatmap = None
        return heatmap, time.perf_counter() - started

    def _run_rules(self, rgb, depth) -> tuple[dict | None, str | None, float]:
        if self.rules is None:
            return None, None, 0.0
        started = time.perf_counter()
        try:
            outcome = self.rules.evaluate(rgb, depth)
        except Exception as exc:  # the rules must never take an inspection down with them
            log.exception("rule evaluation failed")
            return {"error": str(exc)}, None, time.perf_counter() - started
        return outcome.to_dict(), outcome.label, time.perf_counter() - started

    @staticmethod
    def _model_ref(active) -> dict | None:
        if active is None:
            return None
        return {"sha256": active.classifier.sha256, "name": active.classifier.card.name}
