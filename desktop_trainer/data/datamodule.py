"""LightningDataModule: split a resolved dataset and serve train/val/test loaders."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from desktop_trainer.data.dataset import SampleDataset, build_augment
from desktop_trainer.data.samples import LocalDataset
from desktop_trainer.data.split import Split, split_samples
from shared_schema import InputContract


class WeldDataModule(L.LightningDataModule):
    """Thin wrapper: the split is computed once at construction, loaders on demand."""

    def __init__(
        self,
        dataset: LocalDataset,
        contract: InputContract,
        augment: Sequence | None = None,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        min_per_class: int = 5,
        imbalance: str = "loss",
        imbalance_power: float = 0.5,
    ) -> None:
        super().__init__()
        self.dataset = dataset
        self.labels = dataset.schema.names
        self.contract = contract
        self.split: Split = split_samples(
            dataset.samples, self.labels, val_fraction, test_fraction, min_per_class=min_per_class
        )
        self.augment = build_augment(augment)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        if imbalance not in ("loss", "sampler", "none"):
            raise ValueError(f"data.imbalance must be loss, sampler or none, got {imbalance!r}")
        self.imbalance = imbalance
        self.imbalance_power = imbalance_power

    def class_weights(self) -> list[float]:
        """Per-class weights ∝ count^-power over the training split, mean 1."""
        counts = Counter(s.label for s in self.split.train)
        raw = [max(counts[name], 1) ** -self.imbalance_power for name in self.labels]
        mean = sum(raw) / len(raw)
        return [w / mean for w in raw]

    def loss_weights(self) -> list[float] | None:
        """Class weights for the loss when imbalance is handled there."""
        return self.class_weights() if self.imbalance == "loss" else None

    def eval_dataset(self, split: str) -> SampleDataset:
        """The val or test split with the inference-time transform only."""
        return SampleDataset(getattr(self.split, split), self.labels, self.contract)

    def train_dataloader(self) -> DataLoader:
        data = SampleDataset(self.split.train, self.labels, self.contract, self.augment)
        sampler = None
        if self.imbalance == "sampler":
            weights = self.class_weights()
            per_sample = torch.tensor([weights[t] for t in data.targets()], dtype=torch.double)
            sampler = WeightedRandomSampler(per_sample, num_samples=len(data), replacement=True)
        return DataLoader(
            data,
            batch_size=self.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            num_workers=self.num_workers,
            drop_last=len(data) >= 4 * self.batch_size,  # no 1-image BatchNorm batch on real-sized sets
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def _eval_loader(self, split: str) -> DataLoader:
        return DataLoader(
            self.eval_dataset(split),
            batch_size=self.eval_batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
