"""Smoke training from a class folder: outputs, model card, parity, int8, BPU bundle, resume."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest
import torch
import yaml

from desktop_trainer.data.folder import load_folder
from desktop_trainer.evaluation import ort_logits, ort_session
from desktop_trainer.export.onnx_export import ParityError, check_parity, export_onnx
from desktop_trainer.finalize import stratified
from desktop_trainer.finalize.context import FinalizeContext
from desktop_trainer.train import build_datamodule, build_module, run
from rdk_agent.inspection.onnx_model import OnnxClassifier
from shared_schema import ModelCard, read_model_card
from shared_schema.postprocess import model_probabilities, softmax
from shared_schema.preprocess import decode_image, preprocess
from tests.trainer.trainer_support import PER_CLASS, make_cfg, smoke_overrides


@pytest.fixture(scope="module")
def folder_run(synthetic_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = make_cfg(smoke_overrides(out, str(synthetic_folder), "data.glob=*.jpg", "export.int8=true"))
    return cfg, out, run(cfg)


def test_run_writes_every_output(folder_run):
    _, out, _ = folder_run
    for name in (
        "model.onnx",
        "model.int8.onnx",
        "metrics.json",
        "checkpoints/last.ckpt",
        "bpu/config.yaml",
        "report/confusion_matrix.png",
        "report/misclassified.png",
        "report/curves.png",
        "report/summary.md",
    ):
        assert (out / name).is_file(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert (
        saved["split_sizes"]["train"]["total"]
        + saved["split_sizes"]["val"]["total"]
        + saved["split_sizes"]["test"]["total"]
        == 5 * PER_CLASS
    )
    groups = saved["split_groups"]  # one image per group here; a class missing from a split is warned about
    assert sum(groups["groups"][s]["count"] for s in ("train", "val", "test")) == 5 * PER_CLASS
    for label in saved["labels"]:
        missing = any(saved["split_sizes"][s][label] == 0 for s in ("train", "val", "test"))
        assert missing == any(f"class {label!r} has" in w for w in groups["warnings"]), label
    test = saved["test"]
    assert set(test) >= {"accuracy", "macro_f1", "per_class", "confusion_matrix"}
    assert sum(map(sum, test["confusion_matrix"])) == saved["split_sizes"]["test"]["total"]
    assert saved["latency"]["fp32"]["threads"] == 1 and saved["latency"]["fp32"]["median_ms"] > 0
    assert saved["model"]["macs"] > 1e6 and saved["parity"]["top1_mismatches"] == 0
    assert "int8" in saved and 0 <= saved["int8"]["test"]["accuracy"] <= 1
    summary = (out / "report" / "summary.md").read_text()
    assert "| good |" in summary and "## Split by group" in summary
    assert all(f"**warning**: {w}" in summary for w in groups["warnings"])


def test_card_round_trip_binds_the_folder_schema(folder_run, synthetic_folder):
    _, out, _ = folder_run
    schema = load_folder(synthetic_folder, glob="*.jpg").schema
    card = read_model_card(out / "model.onnx")
    assert list(card.labels) == schema.names and card.label_schema_hash == schema.hash
    assert ModelCard.from_json(card.to_json()) == card
    assert (card.input.height, card.input.width, card.input.channels) == (64, 64, "rgb")
    assert card.provenance["samples"] == 5 * PER_CLASS and card.metrics["test"]["accuracy"] >= 0
    proto = onnx.load(str(out / "model.onnx"))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert read_model_card(out / "model.int8.onnx").precision == "int8"
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(out / "model.int8.onnx")).graph.node)


def test_eval_transform_is_the_shared_preprocess_and_ort_matches_torch(folder_run):
    cfg, out, metrics = folder_run
    dm = build_datamodule(cfg)
    card = read_model_card(out / "model.onnx")
    val = dm.eval_dataset("val")
    batch = np.stack([val[i][0].numpy() for i in range(len(val))])
    reference = np.stack([preprocess(decode_image(s.rgb_path.read_bytes()), card.input) for s in dm.split.val])
    assert np.array_equal(batch, reference)
    module = build_module(cfg, dm)
    module.load_state_dict(torch.load(metrics["model"]["checkpoint"], weights_only=True)["state_dict"])
    with torch.no_grad():
        torch_logits = module.net.eval()(torch.from_numpy(batch)).numpy()
    onnx_logits = ort_logits(ort_session(str(out / "model.onnx")), batch, chunk=3)  # dynamic batch sizes
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4)
    assert (onnx_logits.argmax(1) == torch_logits.argmax(1)).all()


def test_parity_failure_is_loud(folder_run, tmp_path):
    cfg, out, _ = folder_run
    dm = build_datamodule(cfg)
    net = build_module(cfg, dm).net.eval()
    path = export_onnx(net, read_model_card(out / "model.onnx"), tmp_path / "m.onnx")
    batch = np.stack([dm.eval_dataset("val")[i][0].numpy() for i in range(3)])
    assert check_parity(net, path, batch)["max_abs_diff"] < 1e-4
    with torch.no_grad():
        net.classifier[-1].bias.add_(0.01)  # every logit moves by 1e-2: same top-1, beyond 1e-4
    with pytest.raises(ParityError, match="does not match PyTorch"):
        check_parity(net, path, batch)


def test_bpu_bundle_holds_unnormalised_rgb_calibration(folder_run):
    cfg, out, _ = folder_run
    config = yaml.safe_load((out / "bpu" / "config.yaml").read_text())
    assert config["model_parameters"]["march"] == "bayes-e"
    assert config["model_parameters"]["onnx_model"] == "../model.onnx"
    inputs = config["input_parameters"]
    assert inputs["input_shape"] == "1x3x64x64" and inputs["norm_type"] == "data_mean_and_scale"
    card = read_model_card(out / "model.onnx")
    np.testing.assert_allclose([float(v) for v in inputs["mean_value"].split()], [255 * m for m in card.input.mean])
    np.testing.assert_allclose(
        [float(v) for v in inputs["scale_value"].split()], [1 / (255 * s) for s in card.input.std], rtol=1e-4
    )
    files = sorted((out / "bpu" / "calibration").glob("*.bin"))
    dm = build_datamodule(cfg)
    assert len(files) == min(cfg.export.calibration_images, len(dm.split.train))
    first = np.fromfile(files[0], dtype=np.float32).reshape(1, 3, 64, 64)
    image = cv2.imread(str(stratified(dm.split.train, cfg.export.calibration_images)[0].rgb_path), cv2.IMREAD_COLOR)
    # letterbox by hand: shrink with area averaging, centre, pad with the mean colour (normalises to 0)
    h, w = image.shape[:2]
    scale = min(64 / w, 64 / h)
    nw, nh = round(w * scale), round(h * scale)
    assert (nw, nh) != (64, 64), "the test images must not be square, or letterbox is not exercised"
    small = cv2.cvtColor(cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    mean = np.asarray(read_model_card(out / "model.onnx").input.mean)
    expected = np.empty((64, 64, 3), np.float32)
    expected[...] = np.round(mean * 255)
    expected[(64 - nh) // 2 : (64 - nh) // 2 + nh, (64 - nw) // 2 : (64 - nw) // 2 + nw] = small
    np.testing.assert_allclose(first[0], expected.transpose(2, 0, 1), atol=1e-3)


def test_calibration_is_reported_and_carried_by_the_card(folder_run):
    _, out, _ = folder_run
    saved = json.loads((out / "metrics.json").read_text())
    cal, card = saved["calibration"], read_model_card(out / "model.onnx")
    assert card.temperature == cal["temperature"] and 0.05 <= card.temperature <= 20.0
    for split in ("val", "test"):
        for when in ("before", "after"):
            assert 0.0 <= cal[split][when]["ece"] <= 1.0 and cal[split][when]["nll"] > 0.0
    assert cal["val"]["after"]["nll"] <= cal["val"]["before"]["nll"], "T minimises the val NLL, T = 1 included"
    thresholds = cal["thresholds"]
    assert (card.confidence_threshold, card.review_threshold) == (
        thresholds["confidence"]["threshold"],
        thresholds["review"]["threshold"],
    )
    reached = card.metrics["calibration"]["thresholds_reached"]
    assert reached == {"confidence": card.confidence_threshold is not None, "review": card.review_threshold is not None}
    capped = card.metrics["calibration"]["capped_by_budget"]
    assert bool(thresholds["note"]) == (not all(reached.values()) or any(capped.values()))
    assert read_model_card(out / "model.int8.onnx").temperature == card.temperature
    summary = (out / "report" / "summary.md").read_text()
    assert f"temperature {card.temperature:.4g}" in summary and "ECE (15 bins)" in summary
    assert "confidence_threshold" in summary and "review_threshold" in summary


def test_trainer_and_agent_apply_the_cards_temperature_identically(folder_run, synthetic_folder):
    cfg, out, _ = folder_run
    dm = build_datamodule(cfg)
    card = read_model_card(out / "model.onnx")
    assert card.temperature != 1.0, "a fitted temperature, or this test could not tell"
    val = dm.eval_dataset("val")
    batch = np.stack([val[i][0].numpy() for i in range(len(val))])
    logits = ort_logits(ort_session(str(out / "model.onnx")), batch)
    trainer = model_probabilities(logits, card)
    agent_model = OnnxClassifier.from_file(out / "model.onnx", load_folder(synthetic_folder, glob="*.jpg").schema, 1)
    agent = np.stack([agent_model.predict(decode_image(s.rgb_path.read_bytes())).probabilities for s in dm.split.val])
    np.testing.assert_allclose(agent, trainer, atol=1e-5, rtol=0)
    assert np.abs(agent - softmax(logits.astype(np.float64))).max() > 1e-4, "the temperature changes the numbers"


def test_calibration_set_holds_every_class(folder_run):
    _, out, _ = folder_run
    saved = json.loads((out / "metrics.json").read_text())
    chosen = saved["calibration_set"]
    assert all(chosen["per_class"][label] >= 1 for label in saved["labels"]), chosen
    assert chosen["size"] == sum(chosen["per_class"].values()) == saved["bpu"]["calibration_images"]
    assert len(list((out / "bpu" / "calibration").glob("*.bin"))) == chosen["size"]


def test_resume_continues_from_the_last_checkpoint(synthetic_folder, tmp_path):
    """An interrupted run (here: one epoch of two) continues from checkpoints/last.ckpt."""
    common = ("data.glob=*.jpg", "export.bpu=false", "model.scheduler=null")
    first = run(make_cfg(smoke_overrides(tmp_path / "a", str(synthetic_folder), *common, "trainer.max_epochs=1")))
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == 0
    resumed = run(make_cfg(smoke_overrides(tmp_path / "b", str(synthetic_folder), *common, f"ckpt_path={last}")))
    assert first["training"]["epochs"] == 1 and resumed["training"]["epochs"] == 2
    logged = (tmp_path / "b" / "logs" / "metrics.csv").read_text().splitlines()
    assert {int(row.split(",")[0]) for row in logged[1:] if row} == {1}, logged[:3]  # only the second epoch ran


def card_json(ctx: FinalizeContext) -> dict[str, str]:
    """An exporter for the test below: the model card as JSON beside the models."""
    path = ctx.out_dir / "card.json"
    path.write_text(ctx.card.to_json(), encoding="utf-8")
    return {"card_json": str(path)}


def test_fast_dev_run_goes_through_the_whole_run_path_with_the_configured_exporters(synthetic_folder, tmp_path):
    """debug=fdr: one batch, then the whole export; an exporter added by one config entry runs, a null one not."""
    added = "+export.exporters.card_json={_target_:tests.trainer.test_train_folder.card_json,_partial_:true}"
    overrides = ("data.glob=*.jpg", "debug=fdr", added, "export.exporters.bpu=null")
    metrics = run(make_cfg(smoke_overrides(tmp_path, str(synthetic_folder), *overrides)))
    assert metrics["model"]["checkpoint"] is None, "fast_dev_run writes no checkpoint: the final weights are exported"
    assert list(metrics["paths"]) == ["model", "card_json", "report", "metrics"]
    assert ModelCard.from_json((tmp_path / "card.json").read_text()) == read_model_card(tmp_path / "model.onnx")
    assert not (tmp_path / "bpu").exists() and "bpu" not in metrics
    assert metrics["parity"]["top1_mismatches"] == 0 and (tmp_path / "report" / "summary.md").is_file()
