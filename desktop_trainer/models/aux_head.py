"""Deep supervision at stride 16: an auxiliary pooled linear head, trained, that gives the finer class map.

The head's ``cam`` lives on the last feature map (stride 32: a 10 x 13 map at 400x300, cells of 49
frame pixels), too coarse to point at a 4-pixel pore. One stage earlier the features are at stride 16.
:class:`AuxHead` puts a second head there (global average pooling + one linear layer over the last
stride-16 block's output, the same classes) whose cross-entropy the training adds to the main loss
with a weight (``model.aux_weight``): deep supervision. Applied as a 1x1 convolution at every position
it gives ``cam_fine`` (N x K x 2h x 2w) exactly as the main head gives ``cam``: no fitting at export.
The logits stay the main head's.
"""

from __future__ import annotations

import torch
from torch import nn

from desktop_trainer.models.cam import CamUnavailable


def stage_blocks(net: nn.Module) -> list[nn.Module]:
    """The network's feature blocks in forward order."""
    from efficientnet_lite_pytorch import EfficientNet as Lite
    from torchvision.models import ResNet

    if isinstance(net, Lite):
        return list(net._blocks)
    if isinstance(net, ResNet):
        return [net.layer1, net.layer2, net.layer3, net.layer4]
    features = getattr(net, "features", None)
    if isinstance(features, nn.Sequential):
        return list(features)
    raise CamUnavailable(f"{type(net).__name__}: no known feature blocks")


def fine_block(net: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(index in :func:`stage_blocks`, channels) of the last block whose output is finer than the last
    feature map (stride 16 on these backbones), found by running ``x`` (one input) through ``net``."""
    blocks = stage_blocks(net)
    shapes: dict[int, tuple[int, ...]] = {}
    hooks = [
        b.register_forward_hook(lambda m, i, o, k=k: shapes.__setitem__(k, tuple(o.shape[1:])))
        for k, b in enumerate(blocks)
    ]
    was_training = net.training
    try:
        with torch.no_grad():
            net.eval()(x)
    finally:
        net.train(was_training)
        for hook in hooks:
            hook.remove()
    last = shapes[len(blocks) - 1]
    finer = [k for k, s in shapes.items() if s[1] > last[1] and s[2] > last[2]]
    if not finer:
        raise CamUnavailable("no feature block finer than the last one")
    return max(finer), shapes[max(finer)][0]


class AuxHead(nn.Module):
    """A pooled linear head on block ``index`` of ``net``'s feature blocks; :meth:`attach` hooks it there.

    Each forward of the network leaves the block's output in :attr:`features` (a forward hook; a bound
    method, so ``copy.deepcopy`` of the network keeps a working head); :meth:`logits` pools and classifies
    it, :meth:`cam` applies the linear layer at every position (no bias, as the main ``cam``).
    """

    def __init__(self, index: int, channels: int, num_classes: int) -> None:
        super().__init__()
        self.index = index
        self.fc = nn.Linear(channels, num_classes)
        self.features: torch.Tensor | None = None

    def attach(self, net: nn.Module) -> None:
        """Hook block :attr:`index` of ``net`` (the network this head is a submodule of)."""
        stage_blocks(net)[self.index].register_forward_hook(self._capture)

    def _capture(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self.features = output

    def pop(self) -> torch.Tensor:
        """The block output of the last forward (released here: in training it holds the graph)."""
        if self.features is None:
            raise RuntimeError("the auxiliary head has seen no forward pass of its network")
        features, self.features = self.features, None
        return features

    def logits(self) -> torch.Tensor:
        """N x K logits of the last forward's stride-16 features."""
        return self.fc(self.pop().mean(dim=(2, 3)))

    def cam(self) -> torch.Tensor:
        """N x K x h x w class maps of the last forward's stride-16 features."""
        return nn.functional.conv2d(self.pop(), self.fc.weight[:, :, None, None])


def add_aux_head(net: nn.Module, num_classes: int, in_channels: int, image_size: tuple[int, int]) -> AuxHead:
    """Give ``net`` an :class:`AuxHead` (``net.aux_head``) on its last stride-16 block, hooked there."""
    index, channels = fine_block(net, torch.zeros(1, in_channels, *image_size))
    head = AuxHead(index, channels, num_classes)
    net.aux_head = head
    head.attach(net)
    return head


def aux_head(net: nn.Module) -> AuxHead | None:
    """``net``'s auxiliary head, if it was built with one."""
    head = getattr(net, "aux_head", None)
    return head if isinstance(head, AuxHead) else None
