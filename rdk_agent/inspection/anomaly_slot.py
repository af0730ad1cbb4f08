"""AnomalySlot: the anomaly model beside the classifier, from ``<models-dir>/anomaly.onnx``.

A small watcher thread polls the file (rsync renames into place, so a changed signature means a
complete new file), loads and checks it in the background, and swaps it in only when sound; a
refused file leaves the previous model serving and says why. ``inspect`` gives the ``anomaly``
part of every inspection result: ``{score, threshold, anomalous, peak, engine, fallback_reason}``
with the classifier's fallback reasons (``no_model``, ``load_failed``, ``schema_mismatch``,
``inference_error``, ``timeout``). :func:`possible_new_defect` says when a frame the classifier
calls good is flagged, so the review queue keeps it as a possible new defect type.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np

from rdk_agent.inspection.anomaly_model import OnnxAnomalyModel
from rdk_agent.inspection.deadline import DeadlineWatchdog
from rdk_agent.inspection.model_manager import file_signature
from rdk_agent.inspection.onnx_model import InferenceError, ModelLoadError
from rdk_agent.inspection.settings import InspectionSettings
from shared_schema import LabelSchema
from shared_schema.anomaly import NORMALISED_THRESHOLD

log = logging.getLogger(__name__)

ANOMALY_FILENAME = "anomaly.onnx"


class AnomalySlot:
    """Owns the serving anomaly model (``active``); ``start()`` loads the file and starts the watcher."""

    def __init__(self, models_dir: Path, schema: LabelSchema, settings: InspectionSettings | None = None) -> None:
        self.settings = settings or InspectionSettings()
        self.path = Path(models_dir) / ANOMALY_FILENAME
        self.schema = schema
        self.active: OnnxAnomalyModel | None = None
        self.last_error: dict | None = None
        self._seen: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Load the current file (if any) and start polling for changes."""
        self.check()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="anomaly-model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the watcher thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.poll_interval_s):
            try:
                self.check()
            except Exception:  # the watcher must outlive any one bad file
                log.exception("anomaly model check failed")

    def check(self) -> None:
        """Load ``anomaly.onnx`` if it changed since the last look; a removed file stops the model serving."""
        signature = file_signature(self.path)
        if signature == self._seen:
            return
        self._seen = signature
        if signature is None:
            self.active, self.last_error = None, None
            return
        try:
            model = OnnxAnomalyModel.from_file(self.path, self.schema, self.settings.intra_op_threads)
        except ModelLoadError as exc:
            self.last_error = {"reason": exc.reason, "code": exc.code, "message": exc.message, "at": time.time()}
            log.warning("anomaly model %s refused: %s", self.path, exc)
            return
        self.active, self.last_error = model, None
        log.info("anomaly model %s serving (%s)", model.sha256[:12], model.card.name)

    def unavailable_reason(self) -> str:
        """Why no anomaly model serves: the refused file's reason, else ``no_model``."""
        return self.last_error["reason"] if self.last_error else "no_model"

    def inspect(self, rgb: np.ndarray, depth: np.ndarray | None, watchdog: DeadlineWatchdog) -> dict:
        """The ``anomaly`` part of an inspection result, under the inspection deadline."""
        model = self.active  # read once: a swap never disturbs this frame
        started = time.perf_counter()
        result: dict = {"score": None, "threshold": NORMALISED_THRESHOLD, "anomalous": None, "peak": None}
        if model is None:
            return {**result, "engine": None, "fallback_reason": self.unavailable_reason(), "latency_ms": 0.0}
        try:
            with watchdog.deadline(self.settings.timeout_ms / 1000.0) as options:
                prediction = model.predict(rgb, depth, options)
        except InferenceError as exc:
            reason = "timeout" if exc.timed_out else "inference_error"
            log.warning("anomaly inference failed on %s: %s", model.sha256[:12], exc)
            latency = round((time.perf_counter() - started) * 1000.0, 3)
            return {**result, "engine": None, "fallback_reason": reason, "error": str(exc), "latency_ms": latency}
        latency = round((time.perf_counter() - started) * 1000.0, 3)
        model_ref = {"sha256": model.sha256, "name": model.card.name}
        return {
            **prediction.to_dict(),
            "engine": "onnx",
            "fallback_reason": None,
            "model": model_ref,
            "latency_ms": latency,
        }

    def status(self) -> dict:
        """JSON summary: the serving model, or why there is none."""
        return {
            "path": str(self.path),
            "active": self.active.describe() if self.active is not None else None,
            "reason": None if self.active is not None else self.unavailable_reason(),
            "last_error": self.last_error,
        }


def possible_new_defect(result: dict, schema: LabelSchema) -> bool:
    """True when ``result``'s verdict is a non-defect label but the anomaly model flags the frame."""
    anomaly = result.get("anomaly") or {}
    label = result.get("label")
    if not anomaly.get("anomalous") or label is None or label not in schema:
        return False
    return not schema.get(label).is_defect
