"""The model's input contract from the data settings: size, resize, orientation, normalisation, depth."""

from __future__ import annotations

from collections.abc import Sequence

from desktop_trainer.models.backbones import IMAGENET_NORMALIZATION, NORMALIZATION
from shared_schema import InputContract


def input_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    """``data.image_size`` as (height, width): one number for a square input, or [height, width]."""
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = (int(v) for v in image_size)
    return height, width


def input_contract(
    image_size: int | Sequence[int],
    backbone: str,
    *,
    use_depth: bool = False,
    resize: str = "letterbox",
    interpolation: str = "auto",
    orient: str = "none",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    depth_mean: float = 0.0,
    depth_std: float = 1.0,
) -> InputContract:
    """The contract the model is trained and served with; mean/std default to what ``backbone``'s weights expect."""
    height, width = input_size(image_size)
    default_mean, default_std = NORMALIZATION.get(backbone, IMAGENET_NORMALIZATION)
    mean = tuple(mean) if mean is not None else default_mean
    std = tuple(std) if std is not None else default_std
    return InputContract(
        height=height,
        width=width,
        channels="rgbd" if use_depth else "rgb",
        resize=resize,
        interpolation=interpolation,
        orient=orient,
        mean=tuple(mean) + ((float(depth_mean),) if use_depth else ()),
        std=tuple(std) + ((float(depth_std),) if use_depth else ()),
    )
