"""LightningDataModule: split a resolved dataset and serve train/val/test loaders."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import albumentations as A
import lightning as L
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from desktop_trainer.data.contract import input_contract
from desktop_trainer.data.dataset import SampleDataset, build_augment
from desktop_trainer.data.samples import DataError, LocalDataset
from desktop_trainer.data.sources import resolve_sources
from desktop_trainer.data.split import Split, split_samples
from desktop_trainer.progress import resolve_flag
from shared_schema import InputContract


class WeldDataModule(L.LightningDataModule):
    """Thin wrapper: the split is computed once at construction, loaders on demand."""

    @classmethod
    def from_sources(
        cls,
        source: str | Sequence[str] | None,
        cache_dir: str,
        backbone: str,
        *,
        glob: str = "*",
        labels: Sequence[str] | None = None,
        token: str | None = None,
        progress: bool | str = "auto",
        group_by: str = "none",
        image_size: int | Sequence[int] = 224,
        use_depth: bool = False,
        resize: str = "letterbox",
        interpolation: str = "auto",
        orient: str = "none",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        depth_mean: float = 0.0,
        depth_std: float = 1.0,
        augment: Sequence[A.BasicTransform] | None = None,
        **loading: Any,
    ) -> WeldDataModule:
        """The ``data`` config's target: resolve and merge the sources, derive the input contract, split.

        ``loading`` holds the constructor's own settings (batch sizes, split fractions, imbalance).
        """
        dataset = resolve_sources(
            source,
            cache_dir=cache_dir,
            glob=glob,
            labels=labels,
            token=token,
            progress=resolve_flag(progress),
            group_by=group_by,
        )
        if use_depth and not dataset.has_depth:
            missing = next(s.id for s in dataset.samples if s.depth_path is None)
            raise DataError(f"data.use_depth=true but sample {missing} has no depth map; set data.use_depth=false")
        contract = input_contract(
            image_size,
            backbone,
            use_depth=bool(use_depth),
            resize=resize,
            interpolation=interpolation,
            orient=orient,
            mean=mean,
            std=std,
            depth_mean=depth_mean,
            depth_std=depth_std,
        )
        return cls(dataset, contract, augment=augment, **loading)

    def __init__(
        self,
        dataset: LocalDataset,
        contract: InputContract,
        augment: Sequence[A.BasicTransform] | None = None,
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
