"""LightningModule: a given loss (plus a weighted auxiliary head's), accuracy and macro-F1 on validation."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from desktop_trainer.models.aux_head import aux_head


class Classifier(L.LightningModule):
    """Wraps a backbone and a loss; the optimiser and scheduler come from Hydra as partials.

    ``channels_last`` keeps the network's weights and inputs in NHWC memory order: the same model,
    and on CPU the depthwise convolutions of the EfficientNet/MobileNet backbones run about 1.65x
    faster (a Lite0 step at 240x320, batch 16: 1.9-2.1 s -> 1.15-1.25 s), with fp32 gradients that
    round about 3x further from exact than NCHW's.

    A network built with an auxiliary stride-16 head (``models.aux_head``) is deeply supervised: the loss
    is the main head's plus ``aux_weight`` times the auxiliary head's on the same batch (the logits, the
    validation metrics and the export stay the main head's; ``val/aux_acc`` tracks the auxiliary head).
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        channels_last: bool = False,
        aux_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "loss", "optimizer", "scheduler"])
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = net.to(memory_format=self.memory_format)
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_f1 = MulticlassF1Score(num_classes, average="macro")
        self.aux_weight = aux_weight
        self.val_aux_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=self.memory_format) if x.dim() == 4 else x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self(x), y)
        aux = aux_head(self.net)
        if aux is not None:
            aux_loss = self.loss(aux.logits(), y)
            self.log("train/aux_loss", aux_loss, on_step=False, on_epoch=True, batch_size=len(y))
            loss = loss + self.aux_weight * aux_loss
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.val_acc(logits, y)
        self.val_f1(logits, y)
        self.log("val/loss", self.loss(logits, y), on_epoch=True, batch_size=len(y), sync_dist=True)
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log("val/f1", self.val_f1, on_epoch=True, prog_bar=True, batch_size=len(y))
        aux = aux_head(self.net)
        if aux is not None:
            self.val_aux_acc(aux.logits(), y)
            self.log("val/aux_acc", self.val_aux_acc, on_epoch=True, batch_size=len(y))

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer=optimizer, total_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
