"""Fitting: the Lightning wrapper collects good patch embeddings for one epoch, then keeps a coreset.

As anomalib's memory-bank models do: no optimiser, no gradients; ``training_step`` embeds a batch
of good images, and at the end of the epoch greedy k-centre selection (on a fixed random
projection, for speed) picks the memory bank the exported :class:`PatchCoreModel` carries.
"""

from __future__ import annotations

import logging
import math

import lightning as L
import torch

from desktop_trainer.anomaly.model import PatchCoreModel

log = logging.getLogger(__name__)


@torch.no_grad()
def greedy_coreset(embeddings: torch.Tensor, size: int, projection_dim: int = 128, seed: int = 0) -> torch.Tensor:
    """Indices of ``size`` rows of ``embeddings`` (P x D) chosen by greedy k-centre (minimax facility location).

    Distances are measured after a fixed Gaussian random projection to ``projection_dim`` dimensions
    (Johnson-Lindenstrauss), as PatchCore does; all rows are returned when ``size`` >= P.
    """
    total = embeddings.shape[0]
    if size >= total:
        return torch.arange(total)
    gen = torch.Generator().manual_seed(seed)
    x = embeddings.float()
    if 0 < projection_dim < x.shape[1]:
        proj = torch.randn(x.shape[1], projection_dim, generator=gen) / math.sqrt(projection_dim)
        x = x @ proj
    sq = (x**2).sum(1)
    chosen = torch.empty(size, dtype=torch.long)
    chosen[0] = int(torch.randint(total, (1,), generator=gen))
    nearest = sq - 2.0 * (x @ x[chosen[0]]) + sq[chosen[0]]  # |a-b|^2 as a matrix-vector product: no P x D temporary
    for i in range(1, size):
        chosen[i] = int(nearest.argmax())
        nearest = torch.minimum(nearest, sq - 2.0 * (x @ x[chosen[i]]) + sq[chosen[i]])
    return chosen


class AnomalyFitModule(L.LightningModule):
    """One epoch over the good training images fills ``model``'s memory bank."""

    def __init__(
        self, model: PatchCoreModel, coreset_size: int, projection_dim: int = 128, patches_per_image: int = 0
    ) -> None:
        super().__init__()
        self.model = model
        self.coreset_size = int(coreset_size)
        self.projection_dim = int(projection_dim)
        self.patches_per_image = int(patches_per_image)
        self._embeddings: list[torch.Tensor] = []
        self.automatic_optimization = False

    def configure_optimizers(self) -> None:
        """Nothing to optimise: the backbone stays as pretrained."""
        return None

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, _ = batch
        self.model.extractor.eval()
        with torch.no_grad():
            emb = self.model.embed(x)
        flat = emb.permute(0, 2, 3, 1).reshape(emb.shape[0], -1, emb.shape[1])
        if 0 < self.patches_per_image < flat.shape[1]:
            gen = torch.Generator().manual_seed(batch_idx)
            keep = torch.randperm(flat.shape[1], generator=gen)[: self.patches_per_image]
            flat = flat[:, keep.to(flat.device)]
        self._embeddings.append(flat.reshape(-1, flat.shape[-1]).cpu())

    def on_train_epoch_end(self) -> None:
        bank = torch.cat(self._embeddings)
        self._embeddings.clear()
        idx = greedy_coreset(bank, self.coreset_size, self.projection_dim)
        log.info("memory bank: %d of %d good patches (%d dims)", len(idx), bank.shape[0], bank.shape[1])
        self.model.set_memory_bank(bank[idx].to(self.device))
