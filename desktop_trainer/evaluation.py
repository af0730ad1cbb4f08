"""Evaluation on the inference-time transform: logits, metrics tables, ONNX Runtime latency."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)


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
