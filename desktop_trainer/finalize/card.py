"""The model card the exported models carry: labels, input contract, calibration, provenance, test figures."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from pathlib import Path

from desktop_trainer import __version__
from desktop_trainer.finalize.context import FinalizeContext
from shared_schema import ModelCard


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


def card_calibration(calibration: dict) -> dict:
    """The calibration summary the model card carries: ECE before/after and whether the thresholds were reached."""
    thresholds = calibration["thresholds"]
    return {
        "ece": {split: {k: calibration[split][k].get("ece") for k in ("before", "after")} for split in ("val", "test")},
        "target_precision": {k: thresholds[k]["target_precision"] for k in ("confidence", "review")},
        "thresholds_reached": {k: thresholds[k]["threshold"] is not None for k in ("confidence", "review")},
        "review_budget": thresholds.get("review_budget"),
        "capped_by_budget": {k: bool(thresholds[k].get("capped_by_budget")) for k in ("confidence", "review")},
        "note": thresholds["note"],
    }


def model_card(ctx: FinalizeContext, calibration: dict, macs: int, training: dict) -> ModelCard:
    """The card for ``ctx``'s network; ``training`` holds epochs, seconds and the checkpoint path (or None),
    and with MLflow tracking ``mlflow_run_id`` and ``mlflow_tracking_uri``, which lead back to the run."""
    dm, cfg = ctx.dm, ctx.cfg
    thresholds = calibration["thresholds"]
    test = ctx.results["test"].metrics
    ckpt = training["checkpoint"]
    return ModelCard(
        labels=tuple(dm.labels),
        label_schema_hash=dm.dataset.schema.hash,
        input=dm.contract,
        name=cfg.export.model_name,
        architecture=cfg.model.backbone,
        temperature=calibration["temperature"],
        confidence_threshold=thresholds["confidence"]["threshold"],
        review_threshold=thresholds["review"]["threshold"],
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        provenance={
            "dataset_id": dm.dataset.dataset_id,
            "sources": list(dm.dataset.sources),
            "samples": len(dm.dataset.samples),
            "epochs": training["epochs"],
            "train_seconds": training["seconds"],
            "code_version": code_version(),
            "checkpoint": Path(ckpt).name if ckpt else None,
            "mlflow_run_id": training.get("mlflow_run_id"),
            "mlflow_tracking_uri": training.get("mlflow_tracking_uri"),
        },
        metrics={
            "test": {k: round(test.get(k, 0.0), 4) for k in ("accuracy", "macro_f1")},
            "macs": macs,
            "calibration": card_calibration(calibration),
        },
        label_schema=dm.dataset.schema.to_dict(),
    )
