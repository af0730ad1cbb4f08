"""ReviewQueue: low-confidence frames saved as unlabelled captures for the operator to label.

They are ordinary captures with ``label=None`` and ``source="review"``, with the inspection
result in their metadata, so once labelled on the page they flow into the next export.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from rdk_agent.inspection.settings import InspectionSettings
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
)


class ReviewQueue:
    """Saves frames the model was unsure about; the live loop is rate-limited."""

    def __init__(self, store: CaptureStore, settings: InspectionSettings, telemetry: Telemetry) -> None:
        self.store = store
        self.settings = settings
        self.telemetry = telemetry
        self._lock = threading.Lock()
        self._last_loop_save = 0.0

    def offer(self, result: dict, rgb: np.ndarray, depth: np.ndarray | None, source: str) -> str | None:
        """Store the frame if its model confidence is below the result's review threshold; the capture id or None.

        ``source`` is ``upload``, ``camera`` or ``loop``; ``loop`` frames are saved at most once per
        ``review_min_interval_s`` so a static scene does not flood the queue.
        """
        if not needs_review(result):
            return None
        if source == "loop":
            with self._lock:
                now = time.monotonic()
                if now - self._last_loop_save < self.settings.review_min_interval_s:
                    return None
                self._last_loop_save = now
        meta = {
            "review": {"reason": "low_confidence", "threshold": result["thresholds"]["review"], "source": source},
            "inspection": {k: result.get(k) for k in _META_KEYS},
        }
        try:
            record = self.store.add(rgb, depth, None, REVIEW_SOURCE, meta=meta)
        except (InsufficientStorage, OSError, ValueError) as exc:
            log.warning("review frame not saved: %s", exc)
            return None
        self.telemetry.review_queued.inc()
        self.telemetry.record_capture(None)
        return record.id
