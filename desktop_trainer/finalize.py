"""After fitting: evaluate the chosen checkpoint, export and verify ONNX, quantise, write the report."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from desktop_trainer import __version__, report
from desktop_trainer.data.datamodule import WeldDataModule
from desktop_trainer.data.dataset import load_sample
from desktop_trainer.data.samples import Sample
from desktop_trainer.evaluation import (
    calibration_metrics,
    classification_metrics,
    fit_temperature,
    ort_latency_ms,
    ort_logits,
    ort_session,
    predict,
    recommend_thresholds,
)
from desktop_trainer.export.bpu import write_bpu_bundle
from desktop_trainer.export.onnx_export import check_parity, export_onnx
from desktop_trainer.export.quantize import quantize_int8
from desktop_trainer.models.macs import count_macs
from desktop_trainer.models.module import Classifier
from shared_schema import ModelCard
from shared_schema.postprocess import probabilities
from shared_schema.preprocess import preprocess

log = logging.getLogger(__name__)


def code_version() -> str:
    """``git describe`` of the checkout when available, else the package version."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip() or __version__
    except (OSError, subprocess.SubprocessError):
        return __version__


def chosen_checkpoint(trainer: L.Trainer, which: str) -> str | None:
    """Path of the best (by the monitored metric) or last checkpoint, if one was written."""
    cb = trainer.checkpoint_callback
    if cb is None:
        return None
    path = cb.best_model_path if which == "best" else cb.last_model_path
    return path or None


def stratified(samples: Sequence[Sample], count: int) -> list[Sample]:
    """About ``count`` samples with every class represented: proportional shares, at least one each.

    The int8 and BPU calibration set. Deterministic: within a class the picks are evenly spaced
    in the given order, and the classes are interleaved so that any prefix stays balanced. When
    ``count`` is below the number of classes, one sample of each class is still taken.
    """
    by_label: dict[str, list[Sample]] = {}
    for sample in samples:
        by_label.setdefault(sample.label, []).append(sample)
    total = len(samples)
    count = min(max(count, len(by_label)), total)
    ideal = {label: count * len(group) / total for label, group in by_label.items()}
    quota = {label: min(len(group), max(1, math.floor(ideal[label]))) for label, group in by_label.items()}
    while sum(quota.values()) < count:  # largest shortfall first, among classes with samples left
        label = max((k for k in by_label if quota[k] < len(by_label[k])), key=lambda k: ideal[k] - quota[k])
        quota[label] += 1
    while sum(quota.values()) > count:  # the minimum of one overshot: trim the most over-served class
        label = max((k for k in by_label if quota[k] > 1), key=lambda k: quota[k] - ideal[k])
        quota[label] -= 1
    picks = {
        label: [group[int((i + 0.5) * len(group) / quota[label])] for i in range(quota[label])]
        for label, group in by_label.items()
    }
    return [picks[label][i] for i in range(max(quota.values(), default=0)) for label in picks if i < quota[label]]


def calibrate(results: dict, export_cfg: DictConfig) -> dict:
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
        val_probs, val_targets, th.accept_precision, th.review_precision, th.min_accepted
    )
    return out


def card_calibration(calibration: dict) -> dict:
    """The calibration summary the model card carries: ECE before/after and whether the thresholds were reached."""
    thresholds = calibration["thresholds"]
    return {
        "ece": {split: {k: calibration[split][k].get("ece") for k in ("before", "after")} for split in ("val", "test")},
        "target_precision": {k: thresholds[k]["target_precision"] for k in ("confidence", "review")},
        "thresholds_reached": {k: thresholds[k]["threshold"] is not None for k in ("confidence", "review")},
        "note": thresholds["note"],
    }


def stacked(dataset) -> np.ndarray:
    """All inputs of an eval dataset as one float32 batch."""
    return np.stack([dataset[i][0].numpy() for i in range(len(dataset))]) if len(dataset) else np.zeros((0,))


def finalize(
    cfg: DictConfig, trainer: L.Trainer, module: Classifier, dm: WeldDataModule, out_dir: Path, started: float
) -> dict:
    """Evaluate, export, verify, report; write metrics.json and print how to deploy."""
    ckpt = chosen_checkpoint(trainer, cfg.export.checkpoint)
    if ckpt:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    net = module.net.cpu().float().eval()
    labels = dm.labels
    results = {}
    for split in ("val", "test"):
        logits, targets = predict(net, dm.eval_dataset(split), cfg.data.eval_batch_size)
        results[split] = (logits, targets, classification_metrics(logits, targets, labels))
    train_seconds = time.time() - started
    contract = dm.contract
    macs = count_macs(net, (contract.num_channels, contract.height, contract.width))
    summary_metrics = {k: round(results["test"][2].get(k, 0.0), 4) for k in ("accuracy", "macro_f1")}
    calibration = calibrate(results, cfg.export)
    card = ModelCard(
        labels=tuple(labels),
        label_schema_hash=dm.dataset.schema.hash,
        input=contract,
        name=cfg.export.model_name,
        architecture=cfg.model.backbone,
        temperature=calibration["temperature"],
        confidence_threshold=calibration["thresholds"]["confidence"]["threshold"],
        review_threshold=calibration["thresholds"]["review"]["threshold"],
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        provenance={
            "dataset_id": dm.dataset.dataset_id,
            "sources": list(dm.dataset.sources),
            "samples": len(dm.dataset.samples),
            "epochs": trainer.current_epoch,
            "train_seconds": round(train_seconds, 1),
            "code_version": code_version(),
            "checkpoint": Path(ckpt).name if ckpt else None,
        },
        metrics={"test": summary_metrics, "macs": macs, "calibration": card_calibration(calibration)},
        label_schema=dm.dataset.schema.to_dict(),
    )
    onnx_path = export_onnx(net, card, out_dir / "model.onnx")
    val_batch = stacked(dm.eval_dataset("val"))
    parity = check_parity(net, onnx_path, val_batch, atol=cfg.export.parity_atol)
    input_shape = (contract.num_channels, contract.height, contract.width)
    latency = {"fp32": ort_latency_ms(str(onnx_path), input_shape, runs=cfg.export.latency_runs)}
    metrics = {
        "labels": labels,
        "label_schema_hash": card.label_schema_hash,
        "dataset": {
            "id": dm.dataset.dataset_id,
            "sources": list(dm.dataset.sources),
            "samples": len(dm.dataset.samples),
        },
        "split_sizes": dm.split.sizes(labels),
        "split_groups": dm.split.summary(labels),
        "model": {
            "architecture": cfg.model.backbone,
            "pretrained": str(cfg.model.pretrained),
            "macs": macs,
            "input": f"{contract.channels} {contract.width}x{contract.height} {contract.resize}",
            "checkpoint": ckpt,
        },
        "training": {
            "epochs": trainer.current_epoch,
            "seconds": round(train_seconds, 1),
            "precision": str(trainer.precision),
        },
        "val": results["val"][2],
        "test": results["test"][2],
        "calibration": calibration,
        "parity": parity,
        "latency": latency,
        "config": OmegaConf.to_container(cfg, resolve=False),
    }
    paths = {"model": str(onnx_path)}
    depth = contract.channels == "rgbd"
    calibration_set = stratified(dm.split.train, cfg.export.calibration_images)
    metrics["calibration_set"] = {
        "size": len(calibration_set),
        "per_class": {label: sum(s.label == label for s in calibration_set) for label in labels},
    }
    train_images = [load_sample(s, depth) for s in calibration_set]
    if cfg.export.int8:
        calibration = np.stack([preprocess(img, contract, dep) for img, dep in train_images])
        int8_path = quantize_int8(onnx_path, out_dir / "model.int8.onnx", calibration)
        test_batch = stacked(dm.eval_dataset("test"))
        q_logits = ort_logits(ort_session(str(int8_path), threads=2), test_batch)
        metrics["int8"] = {"test": classification_metrics(q_logits, results["test"][1], labels)}
        latency["int8"] = ort_latency_ms(str(int8_path), input_shape, runs=cfg.export.latency_runs)
        paths["model_int8"] = str(int8_path)
    if cfg.export.bpu:
        metrics["bpu"] = write_bpu_bundle(out_dir / "bpu", onnx_path, card, train_images, len(train_images))
        paths["bpu"] = metrics["bpu"]["dir"]
    paths.update(write_report(metrics, results, dm, out_dir))
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str), encoding="utf-8")
    paths["metrics"] = str(out_dir / "metrics.json")
    print_closing(paths, metrics)
    metrics["paths"] = paths
    return metrics


def write_report(metrics: dict, results: dict, dm: WeldDataModule, out_dir: Path) -> dict:
    """report/: confusion matrix, misclassified test images, curves, summary.md."""
    rep = out_dir / "report"
    rep.mkdir(exist_ok=True)
    logits, targets, test = results["test"]
    if test.get("count"):
        report.plot_confusion(test["confusion_matrix"], dm.labels, rep / "confusion_matrix.png", "test split")
    metrics["test"]["misclassified"] = report.plot_misclassified(
        dm.split.test,
        logits,
        targets,
        dm.labels,
        rep / "misclassified.png",
        temperature=metrics["calibration"]["temperature"],
    )
    csvs = sorted(out_dir.glob("logs/**/metrics.csv"))
    report.plot_curves(csvs[-1] if csvs else None, rep / "curves.png")
    report.write_summary(metrics, rep / "summary.md")
    return {"report": str(rep)}


def print_closing(paths: dict, metrics: dict) -> None:
    """Print where everything is and the exact command to ship the model."""
    test = metrics["test"]
    print("\n=== desktop_trainer: done ===")
    print(
        f"test accuracy {test.get('accuracy', 0):.4f}  macro-F1 {test.get('macro_f1', 0):.4f}  "
        f"ORT 1-thread {metrics['latency']['fp32']['median_ms']} ms  MACs {metrics['model']['macs'] / 1e6:.1f} M"
    )
    cal = metrics["calibration"]
    thresholds = {k: cal["thresholds"][k]["threshold"] for k in ("confidence", "review")}
    print(
        f"calibration: T {cal['temperature']:.3f}, test ECE {cal['test']['before'].get('ece')} -> "
        f"{cal['test']['after'].get('ece')}; card thresholds confidence {thresholds['confidence']}, "
        f"review {thresholds['review']}"
    )
    if cal["thresholds"]["note"]:
        print(f"  {cal['thresholds']['note']}")
    for name, path in paths.items():
        print(f"{name:>11}: {path}")
    print(f"\nShip it:\n  make deploy-model RDK_HOST=<user@board> MODEL={Path(paths['model']).resolve()}\n")
