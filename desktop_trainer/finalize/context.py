"""What the steps after fitting share: the evaluated network, the data, the model card, metrics and artefacts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from omegaconf import DictConfig
from torch import nn

from desktop_trainer.data.datamodule import WeldDataModule
from desktop_trainer.data.dataset import load_sample
from desktop_trainer.data.samples import Sample
from shared_schema import ModelCard


class SplitResult(NamedTuple):
    """The network's logits on one split, the true class indices, and the classification metrics."""

    logits: np.ndarray
    targets: np.ndarray
    metrics: dict


@dataclass
class FinalizeContext:
    """Handed from step to step: evaluate fills ``results``, the card step ``card`` and ``metrics``;
    each exporter reads what it needs, adds its figures to ``metrics`` and returns its artefacts."""

    cfg: DictConfig
    net: nn.Module  # the chosen weights: CPU, fp32, eval mode
    dm: WeldDataModule
    out_dir: Path
    results: dict[str, SplitResult]
    card: ModelCard | None = None
    metrics: dict = field(default_factory=dict)  # becomes metrics.json
    artefacts: dict[str, str] = field(default_factory=dict)  # name -> path, what the exporters wrote so far
    _batches: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _calibration: list[tuple[np.ndarray, np.ndarray | None]] | None = field(default=None, repr=False)

    def batch(self, split: str) -> np.ndarray:
        """Every preprocessed input of the val or test split as one float32 batch (built once)."""
        if split not in self._batches:
            self._batches[split] = stacked(self.dm.eval_dataset(split))
        return self._batches[split]

    def calibration_images(self) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """The int8/BPU calibration set, decoded once: (image, depth) of ``export.calibration_images``
        training samples stratified over classes; its size and classes go to ``metrics``."""
        if self._calibration is None:
            chosen = stratified(self.dm.split.train, self.cfg.export.calibration_images)
            self.metrics["calibration_set"] = {
                "size": len(chosen),
                "per_class": {label: sum(s.label == label for s in chosen) for label in self.dm.labels},
            }
            depth = self.dm.contract.channels == "rgbd"
            self._calibration = [load_sample(s, depth) for s in chosen]
        return self._calibration


def stacked(dataset) -> np.ndarray:
    """All inputs of an eval dataset as one float32 batch."""
    return np.stack([dataset[i][0].numpy() for i in range(len(dataset))]) if len(dataset) else np.zeros((0,))


def stratified(samples: Sequence[Sample], count: int) -> list[Sample]:
    """About ``count`` samples with every class represented: proportional shares, at least one each.

    The int8 and BPU calibration set. Deterministic: within a class the picks are evenly spaced
    in the given order, and the classes are interleaved so that any prefix stays balanced. When
    ``count`` is below the number of classes, one sample of each class is still taken.
    """
    by_label: dict[str, list[Sample]] = {}
    for sample in samples:
        by_label.setdefault(sample.label, []).append(sample)
    total = len(samples)
    count = min(max(count, len(by_label)), total)
    ideal = {label: count * len(group) / total for label, group in by_label.items()}
    quota = {label: min(len(group), max(1, math.floor(ideal[label]))) for label, group in by_label.items()}
    while sum(quota.values()) < count:  # largest shortfall first, among classes with samples left
        label = max((k for k in by_label if quota[k] < len(by_label[k])), key=lambda k: ideal[k] - quota[k])
        quota[label] += 1
    while sum(quota.values()) > count:  # the minimum of one overshot: trim the most over-served class
        label = max((k for k in by_label if quota[k] > 1), key=lambda k: quota[k] - ideal[k])
        quota[label] -= 1
    picks = {
        label: [group[int((i + 0.5) * len(group) / quota[label])] for i in range(quota[label])]
        for label, group in by_label.items()
    }
    return [picks[label][i] for i in range(max(quota.values(), default=0)) for label in picks if i < quota[label]]
