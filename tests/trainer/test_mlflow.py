"""MLflow tracking: a smoke run logs its resolved config, epoch and final metrics and its artefacts to a
local SQLite store, and the model card's provenance names that run."""

from __future__ import annotations

import mlflow
import pytest

from desktop_trainer.tracking import TrackingLogger, local_store
from desktop_trainer.train import build_trainer, run
from shared_schema import read_model_card, sha256_file
from tests.trainer.trainer_support import make_cfg, smoke_overrides

pytestmark = pytest.mark.trainer


def test_smoke_run_is_tracked_and_the_card_names_its_run(synthetic_folder, tmp_path):
    store = tmp_path / "tracking" / "mlflow.db"
    overrides = smoke_overrides(
        tmp_path / "run",
        str(synthetic_folder),
        "data.glob=*.jpg",
        "trainer.max_epochs=1",
        "export.bpu=false",
        "export.int8=false",
        f"logger.mlflow.tracking_uri=sqlite:///{store}",
    )
    metrics = run(make_cfg(overrides))

    card = read_model_card(tmp_path / "run" / "model.onnx")
    run_id = card.provenance["mlflow_run_id"]
    assert card.provenance["mlflow_tracking_uri"] == f"sqlite:///{store}"
    found = mlflow.MlflowClient(f"sqlite:///{store}").get_run(run_id)
    assert found.info.status == "FINISHED" and found.info.run_name == "smoke"
    params = found.data.params
    assert params["data/image_size"] == "64" and params["model/backbone"] == "mobilenet_v3_small"
    assert params["data/source"] == str(synthetic_folder)  # resolved, not the interpolation
    assert "val/f1" in found.data.metrics  # the epoch metrics through Lightning
    assert found.data.metrics["final/test/macro_f1"] == pytest.approx(metrics["test"]["macro_f1"])
    assert found.data.tags["model_sha256"] == sha256_file(tmp_path / "run" / "model.onnx")
    assert found.data.tags["dataset_id"] == card.provenance["dataset_id"]
    artefacts = {a.path for a in mlflow.MlflowClient(f"sqlite:///{store}").list_artifacts(run_id)}
    assert {"model.onnx", "metrics.json", "report"} <= artefacts
    assert (store.parent / "artifacts").is_dir()  # beside the database


def test_relative_local_store_is_made_absolute_and_remote_uris_pass_through(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri, artifacts, folder = local_store("sqlite:///outputs/mlflow/mlflow.db", None)
    assert uri == f"sqlite:///{tmp_path}/outputs/mlflow/mlflow.db"
    assert artifacts == (tmp_path / "outputs/mlflow/artifacts").as_uri() and folder == tmp_path / "outputs/mlflow"
    assert local_store("http://mlflow.lan:5000", None) == ("http://mlflow.lan:5000", None, None)


def test_default_logger_group_is_csv_and_mlflow_in_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = make_cfg(["+experiment=smoke", f"paths.output_dir={tmp_path / 'run'}"])
    trainer = build_trainer(cfg)
    tracker = next(lg for lg in trainer.loggers if isinstance(lg, TrackingLogger))
    assert tracker.tracking_uri == f"sqlite:///{tmp_path}/outputs/mlflow/mlflow.db"
    assert (tmp_path / "outputs/mlflow/mlflow.db").is_file()
    assert len(make_cfg(["+experiment=smoke", "logger=csv"]).logger) == 1
