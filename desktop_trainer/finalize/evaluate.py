"""The first step after fitting: load the chosen checkpoint, evaluate val and test, calibrate on val."""

from __future__ import annotations

import math

import lightning as L
import torch
from omegaconf import DictConfig
from torch import nn

from desktop_trainer.data.datamodule import WeldDataModule
from desktop_trainer.evaluation import (
    calibration_metrics,
    classification_metrics,
    fit_temperature,
    predict,
    recommend_thresholds,
)
from desktop_trainer.finalize.context import SplitResult
from shared_schema.postprocess import probabilities


def chosen_checkpoint(trainer: L.Trainer, which: str) -> str | None:
    """Path of the best (by the monitored metric) or last checkpoint, if one was written."""
    cb = trainer.checkpoint_callback
    if cb is None:
        return None
    path = cb.best_model_path if which == "best" else cb.last_model_path
    return path or None


def load_checkpoint(module: L.LightningModule, ckpt: str | None) -> nn.Module:
    """The module's network with the checkpoint's weights (the final ones without a checkpoint): CPU, fp32, eval."""
    if ckpt:
        module.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"])
    return module.net.cpu().float().eval()


def evaluate(net: nn.Module, dm: WeldDataModule, batch_size: int) -> dict[str, SplitResult]:
    """Logits, targets and classification metrics on the val and test splits (the inference-time transform)."""
    results = {}
    for split in ("val", "test"):
        logits, targets = predict(net, dm.eval_dataset(split), batch_size)
        results[split] = SplitResult(logits, targets, classification_metrics(logits, targets, dm.labels))
    return results


def calibrate(results: dict[str, SplitResult], export_cfg: DictConfig) -> dict:
    """Temperature fitted on val, ECE and NLL before and after on val and test, recommended thresholds."""
    val_logits, val_targets, _ = results["val"]
    fit = export_cfg.temperature
    temperature = fit_temperature(val_logits, val_targets, (fit.min, fit.max)) if fit.fit else 1.0
    # at a bound, the val NLL still fell towards it: val perfectly separated (min) or no signal (max)
    at_bound = next((b for b in ("min", "max") if math.isclose(temperature, fit[b], rel_tol=1e-3)), None)
    out: dict = {"temperature": temperature, "fitted_on": "val" if fit.fit else None, "at_bound": at_bound}
    for split in ("val", "test"):
        logits, targets, _ = results[split]
        out[split] = {
            "before": calibration_metrics(logits, targets),
            "after": calibration_metrics(logits, targets, temperature),
        }
    val_probs = probabilities(val_logits, temperature) if len(val_targets) else val_logits
    th = export_cfg.thresholds
    out["thresholds"] = recommend_thresholds(
        val_probs, val_targets, th.accept_precision, th.review_precision, th.min_accepted, th.get("review_budget")
    )
    return out
