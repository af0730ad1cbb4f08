"""Torch dataset: decode → (augment) → shared_schema.preprocess, the one inference-time transform."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import albumentations as A
import numpy as np
import torch

from desktop_trainer.data.samples import DataError, Sample
from shared_schema import InputContract
from shared_schema.preprocess import decode_depth, decode_image, preprocess


def build_augment(transforms: Sequence[A.BasicTransform] | None) -> A.Compose | None:
    """One albumentations pipeline of ``transforms`` (``data.augment``, built by Hydra); depth moves like a mask."""
    if not transforms:
        return None
    return A.Compose(list(transforms), additional_targets={"depth": "mask"})


def load_sample(sample: Sample, use_depth: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode a sample's image (BGR uint8) and, when asked, its depth (uint16 mm) as the agent does."""
    try:
        image = decode_image(Path(sample.rgb_path).read_bytes())
        depth = None
        if use_depth:
            if sample.depth_path is None:
                raise ValueError("data.use_depth=true but the sample has no depth map")
            depth = decode_depth(Path(sample.depth_path).read_bytes())
    except (OSError, ValueError) as exc:
        raise DataError(f"sample {sample.id} ({sample.rgb_path}): {exc}") from None
    return image, depth


class SampleDataset(torch.utils.data.Dataset):
    """Samples as (CxHxW float tensor, class index); eval mode is exactly the agent's preprocessing."""

    def __init__(
        self,
        samples: Sequence[Sample],
        labels: Sequence[str],
        contract: InputContract,
        augment: A.Compose | None = None,
    ) -> None:
        self.samples = list(samples)
        self.index = {name: i for i, name in enumerate(labels)}
        self.contract = contract
        self.augment = augment

    def __len__(self) -> int:
        return len(self.samples)

    def targets(self) -> list[int]:
        """Class index of every sample, in order."""
        return [self.index[s.label] for s in self.samples]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[i]
        image, depth = load_sample(sample, self.contract.channels == "rgbd")
        if self.augment is not None:
            out = self.augment(image=image, depth=depth) if depth is not None else self.augment(image=image)
            image, depth = out["image"], out.get("depth", depth)
        x = preprocess(np.ascontiguousarray(image), self.contract, depth)
        return torch.from_numpy(x), self.index[sample.label]
