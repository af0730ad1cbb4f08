"""A finer class map than the head's: a linear probe on the stride-16 features, fitted at export.

The head's ``cam`` lives on the last feature map (stride 32: a 10 x 13 map at 400x300, cells of 49
frame pixels), too coarse to point at a 4-pixel pore. One stage earlier the features are at stride 16.
There is no head there, so one is fitted: ridge regression of the network's own logits on the
spatially pooled, standardised stride-16 features of a batch of inputs (the val split at export). Applied as a 1x1
convolution at every position, the probe gives ``cam_fine`` (N x K x 2h x 2w), the class map of a
linear surrogate of the network at stride 16 (its top-1 agreement with the network is recorded). The
agent multiplies the predicted class's fine map by the head's map resampled onto it: the head says
which region holds the class, the probe where in it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from desktop_trainer.models.cam import CamUnavailable, WithCam


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


def fine_block(net: nn.Module, batch: torch.Tensor) -> nn.Module:
    """The last block whose output is finer than the last feature map (stride 16 on these backbones)."""
    blocks = stage_blocks(net)
    sizes: dict[int, tuple[int, ...]] = {}
    hooks = [
        b.register_forward_hook(lambda m, i, o, k=k: sizes.__setitem__(k, tuple(o.shape[-2:])))
        for k, b in enumerate(blocks)
    ]
    try:
        with torch.no_grad():
            net(batch[:1])
    finally:
        for hook in hooks:
            hook.remove()
    last = sizes[len(blocks) - 1]
    finer = [k for k, size in sizes.items() if size[0] > last[0] and size[1] > last[1]]
    if not finer:
        raise CamUnavailable("no feature block finer than the last one")
    return blocks[max(finer)]


@torch.no_grad()
def fit_probe(
    net: nn.Module, batch: np.ndarray, ridge: float = 0.1, chunk: int = 16
) -> tuple[nn.Module, torch.Tensor, dict]:
    """(block, K x C probe weight, summary): the stride-16 probe of ``net`` fitted on ``batch`` (N x C x H x W).

    Ridge regression on standardised pooled features, the penalty ``ridge`` x the mean diagonal of
    their Gram matrix; the weight is returned in the features' own units (a constant per map, which the
    agent's min-max normalisation removes, is left out).
    """
    x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    block = fine_block(net, x)
    pooled: list[torch.Tensor] = []
    hook = block.register_forward_hook(lambda m, i, o: pooled.append(o.float().mean(dim=(2, 3))))
    try:
        logits = torch.cat([net(x[i : i + chunk]) for i in range(0, len(x), chunk)]).double()
    finally:
        hook.remove()
    feats = torch.cat(pooled).double()
    scale = feats.std(0) + 1e-6
    a = (feats - feats.mean(0)) / scale
    gram = a.T @ a
    lam = ridge * float(torch.trace(gram)) / gram.shape[0]
    target = logits - logits.mean(0)
    weight = torch.linalg.solve(gram + lam * torch.eye(gram.shape[0], dtype=gram.dtype), a.T @ target).T
    implied = a @ weight.T + logits.mean(0)
    agreement = float((implied.argmax(1) == logits.argmax(1)).double().mean())
    summary = {
        "images": len(x),
        "channels": int(weight.shape[1]),
        "top1_agreement": round(agreement, 4),
        "ridge": ridge,
    }
    return block, (weight / scale).float(), summary


def with_fine_cam(net: nn.Module, batch: np.ndarray) -> tuple[WithCam, dict]:
    """``net`` wrapped with ``cam`` and ``cam_fine`` outputs, the probe fitted on ``batch``; its summary."""
    block, weight, summary = fit_probe(net, batch)
    return WithCam(net, (block, weight)).eval(), {**summary, "block": type(block).__name__}
