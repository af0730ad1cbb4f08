"""Class activation maps without gradients: the export graph's second output, ``cam``.

For a network that ends in global average pooling and one linear layer, ``logits = W · mean_hw(F) + b``
where ``F`` is the last feature map. The same ``W`` applied to every position of ``F`` as a 1x1
convolution gives ``cam = W ⋆ F`` (N x K x h x w, one map per class) with ``mean_hw(cam) + b = logits``
exactly. The board then reads the predicted class's map from ``cam`` with no gradients and no head
weights: K maps of h x w values instead of the 1280-channel feature map (for Lite0 at 400x300,
5 x 10 x 13 floats against 1280 x 10 x 13). A head that is not pooling + one linear layer (the
MobileNetV3 MLP heads) has no such map: :func:`cam_parts` says why.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

Features = Callable[[torch.Tensor], torch.Tensor]


class CamUnavailable(ValueError):
    """The network's head is not global average pooling followed by one linear layer."""


def cam_parts(net: nn.Module) -> tuple[Features, nn.Linear]:
    """The last feature map's function and the linear head of ``net``; CamUnavailable when it has none."""
    from efficientnet_lite_pytorch import EfficientNet as Lite
    from torchvision.models import EfficientNet, MobileNetV3, ResNet

    if isinstance(net, Lite) and not net._global_params.local_pooling:
        return net.extract_features, net._fc
    if isinstance(net, ResNet):
        stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)
        return stem, net.fc
    if isinstance(net, EfficientNet):
        linears = [m for m in net.classifier if isinstance(m, nn.Linear)]
        if len(linears) == 1:
            return net.features, linears[0]
    if isinstance(net, MobileNetV3):
        raise CamUnavailable("the MobileNetV3 head is an MLP (linear, hardswish, linear) after pooling: no class map")
    raise CamUnavailable(f"{type(net).__name__}: no known global-pooling + linear head")


class WithCam(nn.Module):
    """``net`` with two outputs: its own logits (unchanged path) and the class maps ``cam`` (no bias)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.features, self.head = cam_parts(net)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(x)
        logits = self.head(torch.flatten(F.adaptive_avg_pool2d(feats, 1), 1))
        cam = F.conv2d(feats, self.head.weight[:, :, None, None])
        return logits, cam


def cam_logits(cam: torch.Tensor, head: nn.Linear) -> torch.Tensor:
    """The logits a cam implies: its spatial mean plus the head's bias."""
    bias = head.bias if head.bias is not None else torch.zeros(cam.shape[1])
    return cam.mean(dim=(2, 3)) + bias
