"""Experiment tracking with MLflow (``logger.mlflow``): the run's resolved config as params, Lightning's
metrics, and after finalize the test figures and artefacts; the run id goes into the model card.

The default store is local, a SQLite database under ``outputs/mlflow`` (MLflow 3 keeps its file store
for existing data only); any other tracking URI (``http://…``, ``databricks``) is passed through as is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig, OmegaConf

from shared_schema import sha256_file

log = logging.getLogger(__name__)

SQLITE = "sqlite:///"


def local_store(tracking_uri: str, artifact_location: str | None) -> tuple[str, str | None, Path | None]:
    """The URI with a local SQLite path made absolute, where its artefacts go (``artifacts/`` beside the
    database unless given) and the folder to create before first use (None for remote stores)."""
    if not tracking_uri.startswith(SQLITE):
        return tracking_uri, artifact_location, None
    db = Path(tracking_uri[len(SQLITE) :]).expanduser().resolve()
    artifacts = artifact_location or (db.parent / "artifacts").as_uri()
    return f"{SQLITE}{db}", artifacts, db.parent


class TrackingLogger(MLFlowLogger):
    """Lightning's MLFlowLogger with a local store's path made absolute (the card must lead back to it from
    anywhere) and its folder created; MLflow creates the database itself when the logger is built.

    ``artifacts``: which of the run's outputs (``model``, ``model_int8``, ``metrics``, ``report``, ``bpu``)
    are copied into the run after finalize.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment_name: str,
        run_name: str | None = None,
        tags: dict | None = None,
        artifact_location: str | None = None,
        artifacts: Sequence[str] = (),
    ) -> None:
        uri, artifact_location, folder = local_store(tracking_uri, artifact_location)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        super().__init__(
            experiment_name=experiment_name,
            run_name=run_name,
            tracking_uri=uri,
            tags=dict(tags or {}),
            artifact_location=artifact_location,
        )
        self.artifacts = tuple(artifacts)

    @property
    def tracking_uri(self) -> str:
        """The store this run lives in."""
        return self._tracking_uri


def tracker(loggers: Iterable) -> TrackingLogger | None:
    """The trainer's MLflow logger, if one is configured."""
    return next((lg for lg in loggers if isinstance(lg, TrackingLogger)), None)


def log_config(trainer: L.Trainer, cfg: DictConfig) -> None:
    """The resolved config as the run's params (nested keys joined with ``/``; Hydra's own node left out)."""
    found = tracker(trainer.loggers)
    if found is None or not trainer.is_global_zero:
        return
    params = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    params.pop("hydra", None)
    found.log_hyperparams(params)
    log.info("mlflow: run %s in %s", found.run_id, found.tracking_uri)


def run_reference(trainer: L.Trainer) -> dict:
    """``mlflow_run_id`` and ``mlflow_tracking_uri`` for the model card's provenance ({} without MLflow)."""
    found = tracker(trainer.loggers)
    if found is None or not trainer.is_global_zero:
        return {}
    return {"mlflow_run_id": found.run_id, "mlflow_tracking_uri": found.tracking_uri}


def log_results(trainer: L.Trainer, metrics: dict, paths: dict[str, str]) -> None:
    """Val/test figures as ``final/<split>/<name>`` metrics, the dataset id and the model's sha256 as tags
    (a board's model version is found by its sha256), and the chosen artefacts of ``paths``."""
    found = tracker(trainer.loggers)
    if found is None or not trainer.is_global_zero:
        return
    figures = {
        f"final/{split}/{name}": float(metrics[split][name])
        for split in ("val", "test")
        for name in ("accuracy", "macro_f1")
        if isinstance(metrics.get(split, {}).get(name), (int, float))
    }
    int8 = metrics.get("int8", {}).get("test", {})
    figures.update({f"final/int8/{k}": float(int8[k]) for k in ("accuracy", "macro_f1") if k in int8})
    client, run_id = found.experiment, found.run_id
    found.log_metrics(figures, step=trainer.global_step)
    dataset = metrics.get("dataset", {})
    tags = {"dataset_id": dataset.get("id"), "dataset_samples": dataset.get("samples")}
    if "model" in paths:
        tags["model_sha256"] = sha256_file(Path(paths["model"]))
    for key, value in tags.items():
        if value is not None:
            client.set_tag(run_id, key, str(value))
    for name in found.artifacts:
        path = Path(paths[name]) if name in paths else None
        if path is None or not path.exists():
            continue
        if path.is_dir():
            client.log_artifacts(run_id, str(path), artifact_path=path.name)
        else:
            client.log_artifact(run_id, str(path))
