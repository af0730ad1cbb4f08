"""ReviewQueue: low-confidence frames saved as unlabelled captures for the operator to label.

They are ordinary captures with ``label=None`` and ``source="review"``, with the inspection
result in their metadata, so once labelled on the page they flow into the next export. While a
challenger runs in shadow, :meth:`ReviewQueue.offer` also hands every frame the model answered to the
shadow (with the review capture's id when the frame was queued), and the frames where challenger
and champion disagree come back through :meth:`ReviewQueue.add_disagreement`, with both answers in
their metadata (``review.reason`` ``shadow_disagreement``).
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from rdk_agent.inspection.anomaly_slot import possible_new_defect
from rdk_agent.inspection.settings import InspectionSettings
from rdk_agent.inspection.shadow import ShadowRunner
from rdk_agent.inspection.thresholds import needs_review
from rdk_agent.storage import CaptureStore, InsufficientStorage
from rdk_agent.telemetry import Telemetry

log = logging.getLogger(__name__)

REVIEW_SOURCE = "review"
# What of an inspection result goes into the capture's metadata (latency and errors stay out).
_META_KEYS = (
    "label",
    "confidence",
    "engine",
    "fallback_reason",
    "probabilities",
    "model",
    "thresholds",
    "onnx",
    "rules",
    "heatmap",  # the model's class map (peak, cell, small PNG): where it looked, kept with the frame
    "anomaly",  # the anomaly model's score, verdict and peak
)


class ReviewQueue:
    """Saves frames the model was unsure about; the live loop is rate-limited."""

    def __init__(
        self,
        store: CaptureStore,
        settings: InspectionSettings,
        telemetry: Telemetry,
        shadow: ShadowRunner | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.telemetry = telemetry
        self.shadow = shadow
        if shadow is not None:
            shadow.review = self
        self._lock = threading.Lock()
        self._last_loop_save = 0.0

    def offer(self, result: dict, rgb: np.ndarray, depth: np.ndarray | None, source: str) -> str | None:
        """Store the frame if its model confidence is below the result's review threshold; the capture id or None.

        ``source`` is ``upload``, ``camera`` or ``loop``; ``loop`` frames are saved at most once per
        ``review_min_interval_s`` so a static scene does not flood the queue. The frame then goes to the
        challenger in shadow, if one runs (never blocking).
        """
        capture_id = self._offer(result, rgb, depth, source)
        if self.shadow is not None:
            self.shadow.offer(result, rgb, depth, capture_id)
        return capture_id

    def _offer(self, result: dict, rgb: np.ndarray, depth: np.ndarray | None, source: str) -> str | None:
        reason = "low_confidence" if needs_review(result) else None
        if reason is None and possible_new_defect(result, self.store.schema):
            reason = "possible_new_defect"  # called good, but unlike the good parts the anomaly model knows
        if reason is None:
            return None
        if source == "loop":
            with self._lock:
                now = time.monotonic()
                if now - self._last_loop_save < self.settings.review_min_interval_s:
                    return None
                self._last_loop_save = now
        meta = {
            "review": {"reason": reason, "threshold": result["thresholds"]["review"], "source": source},
            "inspection": {k: result.get(k) for k in _META_KEYS},
        }
        return self._store(rgb, depth, meta)

    def add_disagreement(self, result: dict, rgb: np.ndarray, depth: np.ndarray | None, shadow: dict) -> str | None:
        """Store a frame where the challenger in shadow disagreed with the champion; the capture id or None."""
        meta = {
            "review": {"reason": "shadow_disagreement", "source": result.get("source")},
            "inspection": {k: result.get(k) for k in _META_KEYS},
            "shadow": shadow,
        }
        return self._store(rgb, depth, meta)

    def _store(self, rgb: np.ndarray, depth: np.ndarray | None, meta: dict) -> str | None:
        try:
            record = self.store.add(rgb, depth, None, REVIEW_SOURCE, meta=meta)
        except (InsufficientStorage, OSError, ValueError) as exc:
            log.warning("review frame not saved: %s", exc)
            return None
        self.telemetry.review_queued.inc()
        self.telemetry.record_capture(None)
        return record.id
