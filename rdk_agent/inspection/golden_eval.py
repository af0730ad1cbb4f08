"""Golden-set scoring on the board: the board's own preprocessing and ONNX Runtime, not the trainer's claim.

Each golden capture is decoded once and given to every model being scored (champion and challenger
share the pass). The work runs in the model cycle's single background thread with single-threaded ORT
sessions and yields between frames, so live inspection keeps the CPU it needs. A frame a model fails
on counts as wrong for that model (``errors``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from rdk_agent.inspection.onnx_model import InferenceError, OnnxClassifier

log = logging.getLogger(__name__)


class GoldenFrame(Protocol):
    """What scoring needs of a golden sample (``rdk_agent.storage.golden.GoldenSample``)."""

    @property
    def id(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def rgb_path(self) -> Path: ...
    @property
    def depth_path(self) -> Path | None: ...


class GoldenSource(Protocol):
    """Where the golden set comes from (``rdk_agent.storage.CaptureStore``)."""

    def golden_samples(self) -> Sequence[GoldenFrame]: ...
    def golden_signature(self) -> str: ...


@dataclass
class _Tally:
    truth: list[str]
    predicted: list[str | None]
    errors: int = 0


def macro_scores(truth: Sequence[str], predicted: Sequence[str | None]) -> dict:
    """``{accuracy, macro_f1, per_class_recall}`` of ``predicted`` against ``truth``.

    Macro-F1 averages the F1 of every class that occurs in the truth or the predictions (as
    scikit-learn does by default); a ``None`` prediction (failed inference) is wrong for every class.
    """
    n = len(truth)
    if n == 0:
        return {"accuracy": None, "macro_f1": None, "per_class_recall": {}}
    classes = sorted({*truth, *(p for p in predicted if p is not None)})
    t = np.array(truth, dtype=object)
    p = np.array([x if x is not None else "" for x in predicted], dtype=object)
    f1s, recall = [], {}
    for c in classes:
        tp = float(np.sum((t == c) & (p == c)))
        fp = float(np.sum((t != c) & (p == c)))
        fn = float(np.sum((t == c) & (p != c)))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
        if tp + fn:
            recall[c] = round(tp / (tp + fn), 6)
    return {
        "accuracy": round(float(np.mean(t == p)), 6),
        "macro_f1": round(float(np.mean(f1s)), 6),
        "per_class_recall": recall,
    }


def load_frame(sample: GoldenFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode a golden sample's RGB (BGR array) and depth (uint16 mm); OSError when a file is unreadable."""
    rgb = cv2.imread(str(sample.rgb_path), cv2.IMREAD_COLOR)
    if rgb is None:
        raise OSError(f"cannot decode {sample.rgb_path}")
    depth = None
    if sample.depth_path is not None:
        depth = cv2.imread(str(sample.depth_path), cv2.IMREAD_UNCHANGED)
        if depth is None:
            raise OSError(f"cannot decode {sample.depth_path}")
    return rgb, depth


def score(
    models: Mapping[str, OnnxClassifier],
    samples: Sequence[GoldenFrame],
    signature: str,
    cancelled: Callable[[], bool] = lambda: False,
) -> dict[str, dict] | None:
    """Score every model of ``models`` (key -> classifier) on ``samples``; None when ``cancelled()`` turned true.

    Each score: ``{accuracy, macro_f1, n, errors, skipped, per_class_recall, signature, evaluated_at, seconds}``
    (accuracy and macro_f1 are None for an empty golden set).
    """
    started = time.perf_counter()
    tallies = {key: _Tally([], []) for key in models}
    skipped = 0
    for sample in samples:
        if cancelled():
            return None
        try:
            rgb, depth = load_frame(sample)
        except OSError as exc:
            log.warning("golden sample %s skipped: %s", sample.id, exc)
            skipped += 1
            continue
        for key, classifier in models.items():
            tally = tallies[key]
            tally.truth.append(sample.label)
            try:
                tally.predicted.append(classifier.predict(rgb, depth).label)
            except InferenceError:
                tally.predicted.append(None)
                tally.errors += 1
        time.sleep(0)  # let the serving threads have the interpreter between frames
    seconds = round(time.perf_counter() - started, 3)
    return {
        key: {
            **macro_scores(tally.truth, tally.predicted),
            "n": len(tally.truth),
            "errors": tally.errors,
            "skipped": skipped,
            "signature": signature,
            "evaluated_at": time.time(),
            "seconds": seconds,
        }
        for key, tally in tallies.items()
    }
