"""After fitting: evaluate → model card → exporters → report. Called by ``train.run`` on rank 0."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from desktop_trainer.data.datamodule import WeldDataModule
from desktop_trainer.finalize.card import model_card
from desktop_trainer.finalize.context import FinalizeContext
from desktop_trainer.finalize.evaluate import calibrate, chosen_checkpoint, evaluate, load_checkpoint
from desktop_trainer.finalize.results import print_closing, write_metrics, write_report
from desktop_trainer.models.macs import count_macs
from desktop_trainer.tracking import log_results, run_reference

Exporter = Callable[[FinalizeContext], dict[str, str]]


def exporters(export_cfg: DictConfig) -> dict[str, Exporter]:
    """``export.exporters`` in order, without the null entries and those switched off by ``export.<name>: false``."""
    return {
        name: instantiate(node)
        for name, node in export_cfg.exporters.items()
        if node is not None and export_cfg.get(name, True) is not False
    }


def finalize(
    cfg: DictConfig, trainer: L.Trainer, module: L.LightningModule, dm: WeldDataModule, out_dir: Path, started: float
) -> dict:
    """Evaluate the chosen checkpoint, write the card into every exported model, report; print how to deploy.

    Returns metrics.json's content plus ``paths``, the artefacts by name.
    """
    ckpt = chosen_checkpoint(trainer, cfg.export.checkpoint)
    net = load_checkpoint(module, ckpt)
    ctx = FinalizeContext(cfg, net, dm, out_dir, evaluate(net, dm, cfg.data.eval_batch_size))
    training = {"epochs": trainer.current_epoch, "seconds": round(time.time() - started, 1)}
    calibration = calibrate(ctx.results, cfg.export)
    contract = dm.contract
    macs = count_macs(net, (contract.num_channels, contract.height, contract.width))
    ctx.card = model_card(ctx, calibration, macs, {**training, "checkpoint": ckpt, **run_reference(trainer)})
    ctx.metrics = {
        "labels": dm.labels,
        "label_schema_hash": dm.dataset.schema.hash,
        "dataset": {
            "id": dm.dataset.dataset_id,
            "sources": list(dm.dataset.sources),
            "samples": len(dm.dataset.samples),
        },
        "split_sizes": dm.split.sizes(dm.labels),
        "split_groups": dm.split.summary(dm.labels),
        "model": {
            "architecture": cfg.model.backbone,
            "pretrained": str(cfg.model.pretrained),
            "macs": macs,
            "input": f"{contract.channels} {contract.width}x{contract.height} {contract.resize}",
            "checkpoint": ckpt,
        },
        "training": {**training, "precision": str(trainer.precision)},
        "val": ctx.results["val"].metrics,
        "test": ctx.results["test"].metrics,
        "calibration": calibration,
        "config": OmegaConf.to_container(cfg, resolve=False),
    }
    for exporter in exporters(cfg.export).values():
        ctx.artefacts.update(exporter(ctx))
    paths = {**ctx.artefacts, **write_report(ctx), **write_metrics(ctx)}
    log_results(trainer, ctx.metrics, paths)
    print_closing(paths, ctx.metrics)
    return {**ctx.metrics, "paths": paths}
