"""The exported anomaly network (PatchCore-style), kept apart from the Lightning wrapper as in anomalib.

``FeatureExtractor`` runs a classifier backbone up to its deepest chosen stage and returns the
chosen stages' feature maps. ``PatchCoreModel`` turns them into locally aware patch embeddings
(3x3 average pooling, deeper stages upsampled to the shallowest one, concatenated), and scores each
patch by its distance to the nearest entry of a memory bank of good patches. The graph returns the
image score (the largest patch distance) and the anomaly map (patch distances upsampled to the
input and smoothed by a Gaussian), so the board needs the ONNX file alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from desktop_trainer.models.backbones import BackboneError


def stages(backbone: nn.Module) -> nn.Sequential:
    """The backbone's stem and blocks in order, as one Sequential whose indices are the ``layers``."""
    if hasattr(backbone, "_blocks"):  # efficientnet_lite_pytorch: stem, then _blocks
        stem = nn.Sequential(backbone._conv_stem, backbone._bn0, backbone._swish)
        return nn.Sequential(stem, *backbone._blocks)
    if hasattr(backbone, "features"):  # torchvision MobileNet / EfficientNet
        return nn.Sequential(*backbone.features)
    raise BackboneError(f"{type(backbone).__name__} has no stage list the anomaly model can read")


class FeatureExtractor(nn.Module):
    """Feature maps of ``layers`` (indices into :func:`stages`); later stages are never computed."""

    def __init__(self, backbone: nn.Module, layers: Sequence[int]) -> None:
        super().__init__()
        blocks = stages(backbone)
        self.layers = sorted(int(i) for i in layers)
        if not self.layers or self.layers[0] < 0 or self.layers[-1] >= len(blocks):
            raise BackboneError(f"anomaly.layers {list(layers)} must be indices 0..{len(blocks) - 1} of the backbone")
        self.blocks = nn.Sequential(*list(blocks)[: self.layers[-1] + 1])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.layers:
                out.append(x)
        return out


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian of radius 4 sigma (anomalib's map smoothing)."""
    radius = max(1, int(4.0 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2.0 * sigma**2))
    return k / k.sum()


class PatchCoreModel(nn.Module):
    """Patch embeddings, nearest-neighbour distances to a memory bank, the map and the score.

    ``memory_bank`` (M x D) is empty until :meth:`set_memory_bank`; ``forward`` then returns
    ``(score [N], anomaly_map [N, 1, H, W])`` in raw distance units.
    """

    def __init__(
        self, extractor: FeatureExtractor, pool: int = 3, blur_sigma: float = 4.0, embed_dim: int = 0, seed: int = 0
    ) -> None:
        super().__init__()
        self.extractor = extractor.eval()
        for p in self.extractor.parameters():
            p.requires_grad_(False)
        self.pool = int(pool)
        # embed_dim > 0: a fixed Gaussian random projection of the patch features (a 1x1 convolution in the
        # graph) shrinks the nearest-neighbour search, so a larger memory bank fits the same MACs
        self.embed_dim = int(embed_dim)
        self.register_buffer("projection", torch.zeros(0, 0))
        self._seed = seed
        self.register_buffer("memory_bank", torch.zeros(0, 0))
        self.register_buffer("bank_sq", torch.zeros(0))
        self.register_buffer("blur", gaussian_kernel(blur_sigma) if blur_sigma > 0 else torch.ones(1))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """N x D x h x w patch embeddings at the shallowest chosen stage's resolution."""
        feats = self.extractor(x)
        if self.pool > 1:
            feats = [F.avg_pool2d(f, self.pool, stride=1, padding=self.pool // 2) for f in feats]
        size = feats[0].shape[-2:]
        feats = [feats[0]] + [F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats[1:]]
        emb = torch.cat(feats, dim=1)
        if self.embed_dim > 0:
            if self.projection.numel() == 0:  # drawn once, on the first embedding; saved with the model
                gen = torch.Generator().manual_seed(self._seed)
                proj = torch.randn(self.embed_dim, emb.shape[1], generator=gen) / self.embed_dim**0.5
                self.projection = proj.to(emb.device)
            emb = F.conv2d(emb, self.projection[:, :, None, None])
        return emb

    def set_memory_bank(self, bank: torch.Tensor) -> None:
        """Store the coreset of good patch embeddings (M x D)."""
        self.memory_bank = bank.detach().float().contiguous()
        self.bank_sq = (self.memory_bank**2).sum(1)

    def patch_distances(self, emb: torch.Tensor) -> torch.Tensor:
        """N x h x w distance of every patch to its nearest memory-bank entry."""
        n, d, h, w = emb.shape
        flat = emb.permute(0, 2, 3, 1).reshape(n, h * w, d)
        sq = (flat**2).sum(-1, keepdim=True) - 2.0 * flat @ self.memory_bank.t() + self.bank_sq
        nearest = sq.min(dim=-1).values.clamp(min=0.0).sqrt()
        return nearest.reshape(n, h, w)

    def smooth(self, amap: torch.Tensor) -> torch.Tensor:
        """Separable Gaussian blur of N x 1 x H x W maps (reflect padding)."""
        k = self.blur.numel()
        if k == 1:
            return amap
        r = k // 2
        amap = F.conv2d(F.pad(amap, (r, r, 0, 0), mode="reflect"), self.blur.view(1, 1, 1, k))
        return F.conv2d(F.pad(amap, (0, 0, r, r), mode="reflect"), self.blur.view(1, 1, k, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dist = self.patch_distances(self.embed(x))
        score = dist.flatten(1).max(dim=1).values
        amap = F.interpolate(dist.unsqueeze(1), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return score, self.smooth(amap)
