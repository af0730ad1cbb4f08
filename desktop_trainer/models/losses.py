"""Classification losses."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class WeightedSmoothedCrossEntropy(nn.Module):
    """Cross-entropy with label smoothing where class weights weigh samples, not target classes.

    ``nn.CrossEntropyLoss(weight=w, label_smoothing=e)`` also weighs the smoothing term per class,
    so the soft target leans towards the heavily weighted (rare) classes and the loss-optimal
    confidence of a correct common-class prediction drops. Here each sample's whole smoothed loss
    is multiplied by the weight of its true class and the batch is normalised by the sum of those
    weights: the optimum per sample stays the plain smoothed target, the weights only rebalance.
    """

    def __init__(self, class_weights: Sequence[float] | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("weight", weight, persistent=False)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean (weighted) smoothed cross-entropy of a batch of logits against class indices."""
        per_sample = F.cross_entropy(logits, target, reduction="none", label_smoothing=self.label_smoothing)
        if self.weight is None:
            return per_sample.mean()
        w = self.weight[target]
        return (per_sample * w).sum() / w.sum()
