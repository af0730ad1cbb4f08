"""Class activation maps without gradients: the export graph's second output, ``cam``.

For a network that ends in global average pooling and one linear layer, ``logits = W · mean_hw(F) + b``
where ``F`` is the last feature map. The same ``W`` applied to every position of ``F`` as a 1x1
convolution gives ``cam = W ⋆ F`` (N x K x h x w, one map per class) with ``mean_hw(cam) + b = logits``
exactly. The board then reads the predicted class's map from ``cam`` with no gradients and no head
weights: K maps of h x w values instead of the 1280-channel feature map (for Lite0 at 400x300,
5 x 10 x 13 floats against 1280 x 10 x 13). A head that is not pooling + one linear layer (the
MobileNetV3 MLP heads) has no such map: :func:`cam_parts` says why.

Where a cell looks (:func:`cam_grid`) follows from the strided convolutions and poolings on the way to
the last feature map and their padding: cell ``j`` is centred on input coordinate ``stride · j + offset``.
TensorFlow-style "same" padding (the Lite0 port) pads right and bottom first, which puts a Lite0 cell
about half a stride right of and below an even split of the input (up to 40 frame pixels at 400x300).
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


def last_block(net: nn.Module) -> nn.Module:
    """The last feature block of ``net`` (stride 32), the layer the report's Grad-CAM reads."""
    from efficientnet_lite_pytorch import EfficientNet as Lite
    from torchvision.models import ResNet

    if isinstance(net, Lite):
        return net._blocks[-1]
    if isinstance(net, ResNet):
        return net.layer4[-1]
    features = getattr(net, "features", None)
    if isinstance(features, nn.Sequential):
        return features[-1]
    raise CamUnavailable(f"{type(net).__name__}: no known last feature block")


class WithCam(nn.Module):
    """``net`` with its own logits (unchanged path), the class maps ``cam`` (no bias) and, when ``net`` has
    an auxiliary stride-16 head (``models.aux_head``), that head's class maps ``cam_fine``."""

    def __init__(self, net: nn.Module) -> None:
        from desktop_trainer.models.aux_head import aux_head

        super().__init__()
        self.net = net
        self.features, self.head = cam_parts(net)
        self.aux = aux_head(net)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.features(x)  # runs the stride-16 block too, whose output the auxiliary head keeps
        logits = self.head(torch.flatten(F.adaptive_avg_pool2d(feats, 1), 1))
        cam = F.conv2d(feats, self.head.weight[:, :, None, None])
        if self.aux is None:
            return logits, cam
        return logits, cam, self.aux.cam()


def cam_grid(model: WithCam, height: int, width: int, until: nn.Module | None = None) -> dict:
    """The input geometry of ``model``'s cam cells for a ``height`` x ``width`` input (of the output of
    ``until`` when given, e.g. the auxiliary head's stride-16 block).

    ``stride`` and ``offset`` ([y, x], input pixels, continuous coordinates with pixel centres at
    ``index + 0.5``): cell ``(i, j)`` is centred on ``(offset_y + stride_y · i, offset_x + stride_x · j)``.
    Found by following the feature map's size through every convolution and pooling that runs on it
    (a layer fed a map of another size, such as a ResNet shortcut, is not on the main path).
    """
    layers: list[tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]] = []
    current = [(height, width)]
    done = [False]

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if done[0] or tuple(inputs[0].shape[-2:]) != current[0]:
            return
        if isinstance(module, nn.Conv2d):
            k, s, d = module.kernel_size, module.stride, module.dilation
            pad = module.padding if isinstance(module.padding, tuple) else (0, 0)
            static = getattr(module, "static_padding", None)
            before = (static.padding[2], static.padding[0]) if isinstance(static, nn.ZeroPad2d) else (0, 0)
            begin = (pad[0] + before[0], pad[1] + before[1])
        else:  # pooling
            k, s, begin = (_pair(module.kernel_size), _pair(module.stride), _pair(module.padding))
            d = _pair(getattr(module, "dilation", 1))
        layers.append((_pair(k), _pair(s), begin, _pair(d)))
        current[0] = tuple(output.shape[-2:])

    kinds = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, kinds)]
    if until is not None:  # registered last: fires after the layers inside it
        hooks.append(until.register_forward_hook(lambda *_: done.__setitem__(0, True)))
    try:
        with torch.no_grad():
            model.features(torch.zeros(1, _in_channels(model), height, width))
    finally:
        for hook in hooks:
            hook.remove()
    stride, offset = [1.0, 1.0], [0.0, 0.0]  # input index = stride * index + offset, per axis
    for k, s, begin, d in layers:
        for a in (0, 1):
            offset[a] += stride[a] * (d[a] * (k[a] - 1) / 2 - begin[a])
            stride[a] *= s[a]
    return {"stride": [int(v) for v in stride], "offset": [round(v + 0.5, 3) for v in offset]}


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _in_channels(model: nn.Module) -> int:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
