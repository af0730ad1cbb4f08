"""ShadowRunner: the challenger answers inspected frames next to the champion, off the request path.

After each inspection the request hands the frame and the champion's answer to :meth:`ShadowRunner.offer`
(through the review queue, which knows whether the frame was already queued for review). ``offer``
only puts the frame in a bounded queue; when the queue is full the frame is dropped and counted. One
worker thread runs the challenger (a single-threaded ORT session) on each frame and records the
counts in the registry. A disagreement goes to the review queue (up to ``shadow_review_max`` per
challenger), so the operator's label settles it; :meth:`refresh_labels` compares the operator labels
that have arrived with both models' answers.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rdk_agent.inspection.onnx_model import InferenceError, OnnxClassifier
from rdk_agent.inspection.registry import SHADOW_CAPTURES_MAX, ModelRegistry

log = logging.getLogger(__name__)


class DisagreementSink(Protocol):
    """Stores a disagreement frame for review (``rdk_agent.inspection.review.ReviewQueue``)."""

    def add_disagreement(self, result: dict, rgb: np.ndarray, depth: np.ndarray | None, shadow: dict) -> str | None: ...


class LabelSource(Protocol):
    """Reads operator labels (``rdk_agent.storage.CaptureStore``)."""

    def get(self, sample_id: str): ...


@dataclass(frozen=True)
class _Job:
    challenger: str
    result: dict
    rgb: np.ndarray
    depth: np.ndarray | None
    capture_id: str | None


@dataclass(frozen=True)
class _Attached:
    sha256: str
    champion: str
    classifier: OnnxClassifier


class ShadowRunner:
    """Runs the attached challenger on offered frames; ``on_frame`` is called after each recorded frame."""

    def __init__(self, registry: ModelRegistry, queue_size: int, review_max: int) -> None:
        self.registry = registry
        self.review_max = review_max
        self.review: DisagreementSink | None = None
        self.on_frame: Callable[[], None] = lambda: None
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_size)
        self._attached: _Attached | None = None
        self._thread: threading.Thread | None = None

    @property
    def challenger(self) -> str | None:
        """The sha256 of the challenger in shadow, or None."""
        attached = self._attached
        return attached.sha256 if attached is not None else None

    def attach(self, sha256: str, champion: str, classifier: OnnxClassifier) -> None:
        """Start shadowing ``champion`` with the challenger ``sha256``."""
        self._attached = _Attached(sha256, champion, classifier)

    def detach(self) -> None:
        """Stop shadowing (frames still queued are skipped)."""
        self._attached = None

    def start(self) -> None:
        """Start the worker thread."""
        self._thread = threading.Thread(target=self._run, name="model-shadow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the worker thread."""
        self.detach()
        if self._thread is not None:
            while True:
                try:
                    self._queue.put_nowait(None)
                    break
                except queue.Full:
                    self._drain_one()
            self._thread.join(timeout=5)

    def _drain_one(self) -> None:
        with contextlib.suppress(queue.Empty):
            self._queue.get_nowait()

    def offer(self, result: dict, rgb: np.ndarray, depth: np.ndarray | None, capture_id: str | None) -> bool:
        """Queue a frame the champion answered; False when nothing is in shadow, or the queue is full (dropped)."""
        attached = self._attached
        model = result.get("model") or {}
        if attached is None or result.get("onnx") is None or model.get("sha256") != attached.champion:
            return False
        try:
            self._queue.put_nowait(_Job(attached.sha256, result, rgb, depth, capture_id))
        except queue.Full:
            with self.registry.change(durable=False):
                version = self.registry.get(attached.sha256)
                if version is not None:
                    version["shadow"]["dropped"] += 1
            return False
        return True

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                self._shadow(job)
            except Exception:  # the worker must survive any one frame
                log.exception("shadow inference failed")

    def _shadow(self, job: _Job) -> None:
        attached = self._attached
        if attached is None or attached.sha256 != job.challenger:
            return
        try:
            label: str | None = attached.classifier.predict(job.rgb, job.depth).label
        except InferenceError as exc:
            log.debug("challenger %s failed on a shadow frame: %s", job.challenger[:12], exc)
            label = None
        champion_label = job.result["onnx"]["label"]
        capture_id = job.capture_id
        disagree = label != champion_label
        if disagree and capture_id is None and self.review is not None and self._may_queue(job.challenger):
            meta = {"champion": {"sha256": attached.champion, "label": champion_label}}
            meta["challenger"] = {"sha256": job.challenger, "label": label}
            capture_id = self.review.add_disagreement(job.result, job.rgb, job.depth, meta)
        with self.registry.change(durable=False):
            version = self.registry.get(job.challenger)
            if version is None:
                return
            shadow = version["shadow"]
            shadow["frames"] += 1
            shadow["disagreements"] += int(disagree)
            if capture_id is not None and len(shadow["captures"]) < SHADOW_CAPTURES_MAX:
                shadow["captures"][capture_id] = [champion_label, label]
                shadow["review_queued"] += int(capture_id != job.capture_id)
        self.on_frame()

    def _may_queue(self, challenger: str) -> bool:
        version = self.registry.get(challenger)
        return version is not None and version["shadow"]["review_queued"] < self.review_max


def refresh_labels(version: dict, store: LabelSource) -> bool:
    """Update ``version``'s operator-label agreement from the store; True when it changed."""
    shadow = version["shadow"]
    labels = champion = challenger = 0
    for capture_id, (champion_label, challenger_label) in list(shadow["captures"].items()):
        try:
            record = store.get(capture_id)
        except KeyError:  # deleted by the operator: it no longer counts
            del shadow["captures"][capture_id]
            continue
        if record.label is None:
            continue
        labels += 1
        champion += int(record.label == champion_label)
        challenger += int(record.label == challenger_label)
    update = {
        "operator_labels": labels,
        "champion_agreement": round(champion / labels, 6) if labels else None,
        "challenger_agreement": round(challenger / labels, 6) if labels else None,
    }
    changed = any(shadow.get(k) != v for k, v in update.items())
    shadow.update(update)
    return changed
