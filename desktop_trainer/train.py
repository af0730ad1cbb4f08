"""The training run: the config builds the objects → fit → finalize (evaluate, card, exporters, report).

Every object comes from a ``_target_`` node with ``hydra.utils.instantiate``: ``data`` (the data
module), ``model.net``, ``model.loss`` and ``model.module`` (network, loss, LightningModule; the
data decides their sizes and class weights), ``callbacks.*``, ``logger.*`` and ``trainer``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra.utils
import lightning as L
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from desktop_trainer.data import contract
from desktop_trainer.data.datamodule import WeldDataModule
from desktop_trainer.data.samples import DataError
from desktop_trainer.finalize import finalize
from desktop_trainer.models.backbones import BackboneError
from desktop_trainer.models.module import Classifier
from desktop_trainer.progress import resolve_flag
from desktop_trainer.tracking import log_config
from shared_schema import InputContract

log = logging.getLogger(__name__)

input_size = contract.input_size


def input_contract(data: DictConfig, backbone: str) -> InputContract:
    """The input contract a ``data`` config describes, without loading data (bench/ builds bare models)."""
    return contract.input_contract(
        data.image_size,
        backbone,
        use_depth=bool(data.use_depth),
        resize=data.resize,
        interpolation=data.interpolation,
        orient=data.orient,
        mean=data.mean,
        std=data.std,
        depth_mean=data.depth_mean,
        depth_std=data.depth_std,
    )


def instantiate(node: DictConfig, **runtime: Any) -> Any:
    """``hydra.utils.instantiate``, except that a DataError or BackboneError of the target comes out as
    itself, not wrapped in Hydra's InstantiationException: its message names the fix, and the CLI
    prints it as it is."""
    try:
        return hydra.utils.instantiate(node, **runtime)
    except InstantiationException as exc:
        cause = exc.__cause__
        while isinstance(cause, InstantiationException):
            cause = cause.__cause__
        if isinstance(cause, (DataError, BackboneError)):
            raise cause from None
        raise


def build_datamodule(cfg: DictConfig) -> WeldDataModule:
    """``data``: resolve the sources and split them."""
    return instantiate(cfg.data)


def build_module(cfg: DictConfig, dm: WeldDataModule) -> Classifier:
    """``model.net``, ``model.loss`` and ``model.module``, sized for the data module's classes and input."""
    num_classes = len(dm.labels)
    c = dm.contract
    net = instantiate(
        cfg.model.net, num_classes=num_classes, in_channels=c.num_channels, image_size=(c.height, c.width)
    )
    loss = instantiate(cfg.model.loss, class_weights=dm.loss_weights())
    return instantiate(cfg.model.module, net=net, loss=loss, num_classes=num_classes)


def instantiate_group(group: DictConfig | None) -> list:
    """One object per ``_target_`` node of a group (``callbacks``, ``logger``); null entries are switched off."""
    objects = []
    for name, node in (group or {}).items():
        if node is None:
            continue
        if "_target_" not in node:
            raise ValueError(f"{name}: a callback or logger config needs a _target_, got keys {list(node)}")
        objects.append(instantiate(node))
    return objects


def resolve_precision(trainer_cfg: DictConfig) -> str:
    """``auto``: 16-bit mixed precision when a CUDA GPU will be used, 32-bit otherwise."""
    precision = str(trainer_cfg.get("precision", "auto"))
    if precision != "auto":
        return precision
    gpu = torch.cuda.is_available() and trainer_cfg.get("accelerator", "auto") in ("auto", "gpu", "cuda")
    return "16-mixed" if gpu else "32-true"


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """``trainer`` with the ``callbacks`` and ``logger`` groups, precision and progress bar resolved."""
    loggers = instantiate_group(cfg.get("logger"))
    return instantiate(
        cfg.trainer,
        precision=resolve_precision(cfg.trainer),
        enable_progress_bar=resolve_flag(cfg.trainer.get("enable_progress_bar", "auto")),
        callbacks=instantiate_group(cfg.get("callbacks")),
        logger=loggers or False,
    )


def print_lightning_once() -> None:
    """Drop the console handler Lightning adds to its ``lightning`` logger at import when the root logger
    already prints (Hydra's console and file handlers): each of its messages then prints once, not twice."""
    if logging.getLogger().hasHandlers():
        logging.getLogger("lightning").handlers.clear()


def run(cfg: DictConfig) -> dict | None:
    """Train, evaluate, export and report; returns metrics.json's content on rank 0 (None elsewhere)."""
    print_lightning_once()
    if cfg.get("anomaly") is not None:  # +experiment=anomaly
        from desktop_trainer.anomaly.run import run_anomaly

        return run_anomaly(cfg)
    started = time.time()
    L.seed_everything(cfg.seed, workers=True)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dm = build_datamodule(cfg)
    groups = dm.split.groups()
    for split, counts in dm.split.sizes(dm.labels).items():
        log.info("split %s: %s in %d group(s)", split, counts, len(groups[split]))
    module = build_module(cfg, dm)
    trainer = build_trainer(cfg)
    log_config(trainer, cfg)
    trainer.fit(module, datamodule=dm, ckpt_path=cfg.ckpt_path)
    if not trainer.is_global_zero:
        return None
    return finalize(cfg, trainer, module, dm, out_dir, started)
