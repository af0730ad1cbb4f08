"""Evaluation on the inference-time transform: logits, metrics tables, calibration, ONNX Runtime latency."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_calibration_error,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from shared_schema.postprocess import probabilities

ECE_BINS = 15


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(logits N x K, targets N) for a dataset of (tensor, index) pairs."""
    model.eval()
    logits, targets = [], []
    for x, y in DataLoader(dataset, batch_size=batch_size):
        logits.append(model(x).float().numpy())
        targets.append(np.asarray(y))
    if not logits:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(logits), np.concatenate(targets)


def classification_metrics(logits: np.ndarray, targets: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows = truth)."""
    k = len(labels)
    if len(targets) == 0:
        return {"count": 0}
    preds = torch.from_numpy(logits.argmax(1))
    truth = torch.from_numpy(targets.astype(np.int64))
    fns = {"precision": multiclass_precision, "recall": multiclass_recall, "f1": multiclass_f1_score}
    per = {name: fn(preds, truth, num_classes=k, average="none").tolist() for name, fn in fns.items()}
    support = np.bincount(targets, minlength=k).tolist()
    return {
        "count": len(targets),
        "accuracy": float(multiclass_accuracy(preds, truth, num_classes=k, average="micro")),
        "macro_f1": float(multiclass_f1_score(preds, truth, num_classes=k, average="macro")),
        "per_class": {
            label: {
                "precision": round(per["precision"][i], 4),
                "recall": round(per["recall"][i], 4),
                "f1": round(per["f1"][i], 4),
                "support": support[i],
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": multiclass_confusion_matrix(preds, truth, num_classes=k).tolist(),
    }


def nll(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the targets under ``softmax(logits / temperature)``."""
    z = torch.from_numpy(np.asarray(logits, dtype=np.float64)) / temperature
    return float(F.cross_entropy(z, torch.from_numpy(np.asarray(targets, dtype=np.int64))))


def fit_temperature(
    logits: np.ndarray, targets: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0), tol: float = 1e-5
) -> float:
    """The temperature in ``bounds`` that minimises the NLL of ``softmax(logits / T)`` (1.0 with no data).

    The NLL is convex in 1/T, hence unimodal in log T, so a golden-section search on log T finds
    its minimum without gradients, deterministically, and never leaves the bounds. T = 1 is kept
    when the search does not beat it (a flat NLL, or an optimum at the tolerance).
    """
    if len(targets) == 0:
        return 1.0
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo + (1 - ratio) * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, targets, math.exp(a)), nll(logits, targets, math.exp(b))
    while hi - lo > tol:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = lo + (1 - ratio) * (hi - lo)
            fa = nll(logits, targets, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, targets, math.exp(b))
    best = round(math.exp((lo + hi) / 2.0), 6)
    return best if nll(logits, targets, best) < nll(logits, targets, 1.0) else 1.0


def calibration_metrics(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> dict:
    """Expected calibration error (15 bins, L1) and NLL of ``softmax(logits / temperature)``."""
    if len(targets) == 0:
        return {"count": 0}
    probs = torch.from_numpy(probabilities(logits, temperature))
    truth = torch.from_numpy(np.asarray(targets, dtype=np.int64))
    ece = multiclass_calibration_error(probs, truth, num_classes=probs.shape[1], n_bins=ECE_BINS, norm="l1")
    return {
        "ece": round(float(ece), 5),
        "nll": round(nll(logits, targets, temperature), 5),
        "mean_confidence": round(float(probs.max(1).values.mean()), 5),
    }


def choose_threshold(confidence: np.ndarray, correct: np.ndarray, target_precision: float, min_accepted: int) -> dict:
    """The lowest confidence threshold whose accepted predictions reach ``target_precision``.

    A prediction is accepted when its calibrated confidence is at least the threshold (the agent
    lets the rules decide below it). The candidates are the observed confidences. The precision of
    the accepted set is estimated as the smaller of two numbers:

    * the fraction of accepted predictions that are correct, which on a small validation set is
      1.0 as soon as the threshold clears the last error, whatever the confidences say (40 correct
      frames do not show 99%);
    * the mean calibrated confidence of the accepted predictions, the model's own expected
      precision, which on its own would overlook errors made at high confidence.

    The smaller of the two is the cautious estimate; on a large validation set both agree. A
    threshold must also accept at least ``min_accepted`` predictions, so that a handful of frames
    never sets it. Returns ``threshold`` (None when no candidate qualifies), and the accepted
    count, fraction, precision and mean confidence at it (or at the most precise candidate that
    accepts ``min_accepted``, to show how far the target is).
    """
    n = len(confidence)
    order = np.argsort(-confidence, kind="stable")
    conf = np.asarray(confidence, dtype=np.float64)[order]
    ok = np.asarray(correct, dtype=np.float64)[order]
    accepted = np.arange(1, n + 1)
    empirical = np.cumsum(ok) / accepted
    expected = np.cumsum(conf) / accepted
    estimate = np.minimum(empirical, expected)
    # a threshold accepts every prediction at or above it: only the last of equal confidences counts
    last_of_ties = np.append(conf[1:] < conf[:-1], True) if n else np.zeros(0, bool)
    eligible = last_of_ties & (accepted >= min_accepted)
    reached = np.flatnonzero(eligible & (estimate >= target_precision))
    if reached.size:
        i = int(reached[-1])
    elif eligible.any():
        i = int(np.flatnonzero(eligible)[np.argmax(estimate[eligible])])
    else:
        return {"threshold": None, "target_precision": target_precision, "accepted": 0, "validation_count": n}
    return {
        "threshold": float(conf[i]) if reached.size else None,
        "target_precision": target_precision,
        "accepted": int(accepted[i]),
        "accepted_fraction": round(float(accepted[i]) / n, 4),
        "precision": round(float(empirical[i]), 4),
        "mean_confidence": round(float(expected[i]), 4),
        "validation_count": n,
    }


def recommend_thresholds(
    probs: np.ndarray,
    targets: np.ndarray,
    accept_precision: float = 0.99,
    review_precision: float = 0.995,
    min_accepted: int = 20,
    review_budget: float | None = None,
) -> dict:
    """Confidence and review thresholds for the agent from calibrated validation probabilities.

    ``confidence`` and ``review`` are :func:`choose_threshold` at ``accept_precision`` and
    ``review_precision``; the review threshold is never below the confidence threshold.

    ``review_budget`` is the operator's capacity: the largest share of frames the review queue
    may take. Where a precision target would send more of the validation frames below its
    threshold (or no threshold reaches it), the threshold is capped at the budget's quantile of
    the validation confidences, so that only the least confident frames go to review (and to the
    rules), and the choice records ``capped_by_budget`` with the precision it keeps. ``note``
    says which target was missed or capped (the card carries None for a missed one).
    """
    confidence = probs.max(1) if len(probs) else np.zeros(0)
    correct = probs.argmax(1) == targets if len(probs) else np.zeros(0, bool)
    accept = choose_threshold(confidence, correct, accept_precision, min_accepted)
    review = choose_threshold(confidence, correct, review_precision, min_accepted)
    capped = _cap_to_budget((accept, review), confidence, correct, review_budget)
    if accept["threshold"] is not None and review["threshold"] is not None:
        review["threshold"] = max(review["threshold"], accept["threshold"])
    missed = [
        f"{name} precision {choice['target_precision']}"
        for name, choice in (("accept", accept), ("review", review))
        if choice["threshold"] is None
    ]
    notes = []
    if missed:
        notes.append(
            f"no threshold reaches {' or '.join(missed)} on the {len(confidence)} validation predictions (a threshold "
            f"must accept at least {min_accepted}), so the card recommends none; the agent uses the station's or its "
            "default"
        )
    if capped:
        notes.append(
            f"the review budget ({review_budget:.0%} of frames) caps the {' and '.join(capped)} threshold at "
            f"{review['threshold']:.4f}: accepted precision on val {review['precision']:.4f}, below the target"
        )
    return {
        "confidence": accept,
        "review": review,
        "min_accepted": min_accepted,
        "review_budget": review_budget,
        "note": "; ".join(notes),
    }


def _cap_to_budget(
    choices: tuple[dict, ...], confidence: np.ndarray, correct: np.ndarray, budget: float | None
) -> list:
    """Lower each threshold of ``choices`` that sends more than ``budget`` of the frames below it; their names."""
    if budget is None or not len(confidence):
        return []
    if not 0 <= budget < 1:
        raise ValueError(f"review_budget must be in [0, 1), got {budget}")
    ordered = np.sort(confidence)
    cap = float(ordered[int(budget * len(ordered))])  # at most budget * n frames lie strictly below it
    kept = confidence >= cap
    capped = []
    for name, choice in zip(("confidence", "review"), choices, strict=True):
        if choice["threshold"] is None or choice["threshold"] > cap:
            choice.update(
                threshold=cap,
                capped_by_budget=True,
                accepted=int(kept.sum()),
                accepted_fraction=round(float(kept.mean()), 4),
                precision=round(float(correct[kept].mean()), 4),
                mean_confidence=round(float(confidence[kept].mean()), 4),
            )
            capped.append(name)
    return capped


def ort_session(path: str, threads: int = 1) -> ort.InferenceSession:
    """A CPU ONNX Runtime session limited to ``threads`` intra-op threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def ort_logits(session: ort.InferenceSession, batch: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Run a float32 N x C x H x W batch through a session in chunks."""
    name = session.get_inputs()[0].name
    outs = [session.run(None, {name: batch[i : i + chunk]})[0] for i in range(0, len(batch), chunk)]
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def ort_latency_ms(path: str, input_shape: Sequence[int], runs: int = 30, threads: int = 1) -> dict:
    """Median and p90 single-image latency of a model at ``threads`` threads."""
    session = ort_session(path, threads)
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((1, *input_shape)).astype(np.float32)
    for _ in range(3):
        session.run(None, {name: x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {name: x})
        times.append((time.perf_counter() - start) * 1000.0)
    return {
        "threads": threads,
        "median_ms": round(float(np.median(times)), 3),
        "p90_ms": round(float(np.percentile(times, 90)), 3),
    }
