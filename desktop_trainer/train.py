"""The training run: resolve data → fit → evaluate → export → report. Called by ``__main__``."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from desktop_trainer.data.datamodule import WeldDataModule
from desktop_trainer.data.samples import DataError
from desktop_trainer.data.sources import resolve_sources
from desktop_trainer.finalize import finalize
from desktop_trainer.models.backbones import IMAGENET_NORMALIZATION, NORMALIZATION, build_backbone
from desktop_trainer.models.module import Classifier
from desktop_trainer.progress import resolve_flag
from shared_schema import InputContract

log = logging.getLogger(__name__)


def input_size(image_size: int | ListConfig) -> tuple[int, int]:
    """``data.image_size`` as (height, width): one number for a square input, or [height, width]."""
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = (int(v) for v in image_size)
    return height, width


def input_contract(data: DictConfig, backbone: str) -> InputContract:
    """The model's input contract from the data config; mean/std default to what the backbone's weights expect."""
    depth = bool(data.use_depth)
    height, width = input_size(data.image_size)
    default_mean, default_std = NORMALIZATION.get(backbone, IMAGENET_NORMALIZATION)
    mean = tuple(data.mean) if data.get("mean") is not None else default_mean
    std = tuple(data.std) if data.get("std") is not None else default_std
    return InputContract(
        height=height,
        width=width,
        channels="rgbd" if depth else "rgb",
        resize=data.resize,
        interpolation=data.interpolation,
        orient=data.get("orient", "none"),
        mean=tuple(mean) + ((float(data.depth_mean),) if depth else ()),
        std=tuple(std) + ((float(data.depth_std),) if depth else ()),
    )


def resolve_precision(trainer_cfg: DictConfig) -> str:
    """``auto``: 16-bit mixed precision when a CUDA GPU will be used, 32-bit otherwise."""
    precision = str(trainer_cfg.get("precision", "auto"))
    if precision != "auto":
        return precision
    gpu = torch.cuda.is_available() and trainer_cfg.get("accelerator", "auto") in ("auto", "gpu", "cuda")
    return "16-mixed" if gpu else "32-true"


def build_datamodule(cfg: DictConfig) -> WeldDataModule:
    """Resolve the data sources and split them."""
    d = cfg.data
    dataset = resolve_sources(
        OmegaConf.to_object(d.source) if OmegaConf.is_list(d.source) else d.source,
        cache_dir=d.cache_dir,
        glob=d.glob,
        labels=list(d.labels) if d.labels else None,
        token=d.token,
        progress=resolve_flag(d.progress),
        group_by=d.get("group_by", "none"),
    )
    if d.use_depth and not dataset.has_depth:
        missing = next(s.id for s in dataset.samples if s.depth_path is None)
        raise DataError(f"data.use_depth=true but sample {missing} has no depth map; set data.use_depth=false")
    return WeldDataModule(
        dataset,
        input_contract(d, cfg.model.backbone),
        augment=OmegaConf.to_container(d.augment) if d.augment else None,
        batch_size=d.batch_size,
        eval_batch_size=d.eval_batch_size,
        num_workers=d.num_workers,
        val_fraction=d.val_fraction,
        test_fraction=d.test_fraction,
        min_per_class=d.min_per_class,
        imbalance=d.imbalance,
        imbalance_power=d.imbalance_power,
    )


def build_module(cfg: DictConfig, dm: WeldDataModule) -> Classifier:
    """Backbone + LightningModule from the model config."""
    m = cfg.model
    pretrained = m.pretrained if isinstance(m.pretrained, bool) else str(m.pretrained)
    net = build_backbone(
        m.backbone,
        num_classes=len(dm.labels),
        in_channels=dm.contract.num_channels,
        pretrained=pretrained,
        image_size=(dm.contract.height, dm.contract.width),
        dropout=m.dropout,
        bn_momentum=m.get("bn_momentum"),
    )
    frozen = freeze(net, list(m.freeze or []))
    log.info("backbone %s: %d parameter tensors frozen (%s)", m.backbone, frozen, ", ".join(m.freeze or []) or "none")
    return Classifier(
        net,
        num_classes=len(dm.labels),
        optimizer=instantiate(m.optimizer),
        scheduler=instantiate(m.scheduler) if m.scheduler else None,
        class_weights=dm.loss_weights(),
        label_smoothing=m.label_smoothing,
    )


def freeze(net: torch.nn.Module, prefixes: list[str]) -> int:
    """Stop training parameters whose name starts with a prefix; no backward pass runs through them."""
    count = 0
    for name, param in net.named_parameters():
        if prefixes and name.startswith(tuple(prefixes)):
            param.requires_grad_(False)
            count += 1
    return count


def run(cfg: DictConfig) -> dict | None:
    """Train, evaluate, export and report; returns metrics.json's content on rank 0 (None elsewhere)."""
    started = time.time()
    L.seed_everything(cfg.seed, workers=True)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dm = build_datamodule(cfg)
    groups = dm.split.groups()
    for split, counts in dm.split.sizes(dm.labels).items():
        log.info("split %s: %s in %d group(s)", split, counts, len(groups[split]))
    module = build_module(cfg, dm)
    callbacks = [instantiate(c) for c in (cfg.callbacks or {}).values() if c]
    loggers = [instantiate(c) for c in (cfg.logger or {}).values() if c]
    trainer_kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_kwargs["precision"] = resolve_precision(cfg.trainer)
    trainer_kwargs["enable_progress_bar"] = resolve_flag(trainer_kwargs.get("enable_progress_bar", "auto"))
    trainer = L.Trainer(**trainer_kwargs, callbacks=callbacks, logger=loggers or False)
    trainer.fit(module, datamodule=dm, ckpt_path=cfg.ckpt_path)
    if not trainer.is_global_zero:
        return None
    return finalize(cfg, trainer, module, dm, out_dir, started)
