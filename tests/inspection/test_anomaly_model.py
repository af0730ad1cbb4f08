"""The anomaly model on the agent: a real ORT session through the shared preprocessing, the slot beside the
classifier, and a frame the classifier calls good but the anomaly model flags reaching the review queue.

The model is a tiny real ONNX graph built with onnx.helper: its map is the per-pixel distance of the
preprocessed input from a good reference frame (3x3 averaged), its score the map's maximum. The
frames are portrait, so the card's landscape turn and letterbox both stand between the map's peak
and the frame coordinates the agent reports.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from rdk_agent.inspection.anomaly_model import OnnxAnomalyModel
from rdk_agent.inspection.onnx_model import ModelLoadError, OnnxClassifier
from shared_schema import METADATA_KEY, InputContract, ModelCard, default_weld_schema
from shared_schema.preprocess import preprocess
from tests.agent_app import multipart
from tests.helpers import onnx_models as om

FAST = {"poll_interval_s": 0.1, "intra_op_threads": 1}
CONTRACT = InputContract(height=24, width=32, mean=(0.5,) * 3, std=(0.25,) * 3, resize="letterbox", orient="landscape")
FRAME_HW = (120, 80)  # portrait: turned to landscape, then letterboxed
SQUARE = (20, 80, 14)  # x, y, side of the bright square in the frame


def good_frame(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(128 + rng.normal(0, 3, (*FRAME_HW, 3)), 0, 255).astype(np.uint8)


def flawed_frame(seed: int = 0) -> np.ndarray:
    frame = good_frame(seed)
    x, y, side = SQUARE
    frame[y : y + side, x : x + side] = 250
    return frame


def anomaly_card(schema=None, threshold: float = 0.8, **fields) -> ModelCard:
    schema = schema or default_weld_schema()
    scale = {"threshold": threshold, "min": 0.0, "max": 2.0}
    return ModelCard(
        labels=tuple(schema.names),
        label_schema_hash=schema.hash,
        input=CONTRACT,
        name="tiny-anomaly",
        architecture="reference distance (test)",
        output_name="score",
        task="anomaly",
        extra_outputs={"anomaly_map": "anomaly_map"},
        anomaly={"method": "patchcore", "image": scale, "pixel": scale, "trained_on": ["good"]},
        **fields,
    )


def anomaly_model_bytes(card: ModelCard | None = None) -> bytes:
    """map = AvgPool3x3(mean_c |x - reference|), score = max(map); the reference is a good frame, preprocessed."""
    card = card or anomaly_card()
    reference = preprocess(good_frame(99), CONTRACT)[None]
    nodes = [
        helper.make_node("Sub", ["input", "reference"], ["diff"]),
        helper.make_node("Abs", ["diff"], ["dist"]),
        helper.make_node("ReduceMean", ["dist"], ["per_pixel"], axes=[1], keepdims=1),
        helper.make_node("AveragePool", ["per_pixel"], ["anomaly_map"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("ReduceMax", ["anomaly_map"], ["score"], axes=[1, 2, 3], keepdims=0),
    ]
    h, w = CONTRACT.height, CONTRACT.width
    graph = helper.make_graph(
        nodes,
        "tiny-anomaly",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, h, w])],
        [
            helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["batch", 1, h, w]),
        ],
        [numpy_helper.from_array(reference.astype(np.float32), "reference")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.metadata_props.add(key=METADATA_KEY, value=card.to_json())
    onnx.checker.check_model(model)
    return model.SerializeToString()


def deploy_anomaly(models_dir: Path, data: bytes) -> None:
    """Write anomaly.onnx the way rsync does: a temporary file renamed into place."""
    tmp = models_dir / ".anomaly.onnx.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, models_dir / "anomaly.onnx")


def test_scores_maps_and_peaks_through_the_agent_preprocessing():
    model = OnnxAnomalyModel(anomaly_model_bytes(), default_weld_schema(), intra_op_threads=1)
    good = model.predict(good_frame(1))
    flawed = model.predict(flawed_frame(1))
    assert not good.anomalous and good.score < 0.5
    assert flawed.anomalous and flawed.score > 0.5 and flawed.raw_score > 3 * good.raw_score
    assert flawed.anomaly_map.shape == (CONTRACT.height, CONTRACT.width)
    x, y, side = SQUARE
    px, py = flawed.peak
    cell = 4  # one input pixel is 3.75 frame pixels here
    assert x - cell <= px <= x + side + cell and y - cell <= py <= y + side + cell, flawed.peak
    assert flawed.to_dict()["threshold"] == 0.5


def test_a_classifier_card_or_another_schema_is_refused():
    with pytest.raises(ModelLoadError) as exc:
        OnnxAnomalyModel(om.valid_model_bytes(), default_weld_schema())
    assert exc.value.code == "not_anomaly"
    other = default_weld_schema().__class__(name="tiles", labels=default_weld_schema().labels[:2])
    with pytest.raises(ModelLoadError) as exc:
        OnnxAnomalyModel(anomaly_model_bytes(anomaly_card(other)), default_weld_schema())
    assert exc.value.reason == "schema_mismatch"


def test_an_anomaly_model_copied_as_the_classifier_is_refused_with_where_it_belongs():
    with pytest.raises(ModelLoadError) as exc:
        OnnxClassifier(anomaly_model_bytes(), default_weld_schema())
    assert exc.value.code == "not_classifier" and "anomaly.onnx" in str(exc.value)


def inspect_upload(agent, frame: np.ndarray) -> dict:
    ok, buf = cv2.imencode(".png", frame)
    assert ok
    data = multipart({"image": ("frame.png", buf.tobytes(), "image/png")})
    r = agent.client.post(agent.api("inspect"), headers=agent.auth, data=data)
    assert r.status_code == 200, r.text
    return r.json


def test_good_by_the_classifier_but_anomalous_goes_to_review_as_a_possible_new_defect(agent_app):
    agent = agent_app(inspection=FAST)
    body = inspect_upload(agent, good_frame(2))
    assert body["anomaly"]["fallback_reason"] == "no_model" and body["anomaly"]["engine"] is None

    om.write_valid(agent.models_dir / "model.onnx", dominant="good", margin=9.0)
    deploy_anomaly(agent.models_dir, anomaly_model_bytes())
    deadline = time.monotonic() + 15
    while (body := inspect_upload(agent, good_frame(2)))["engine"] != "onnx" or body["anomaly"]["engine"] != "onnx":
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    assert body["label"] == "good" and body["anomaly"]["anomalous"] is False
    assert body["review_capture_id"] is None, "a good frame the anomaly model passes stays out of the queue"

    body = inspect_upload(agent, flawed_frame(3))
    assert body["label"] == "good" and body["engine"] == "onnx"
    assert body["anomaly"]["anomalous"] is True and body["anomaly"]["score"] > 0.5
    capture_id = body["review_capture_id"]
    assert capture_id
    record = agent.client.get(agent.api(f"captures/{capture_id}"), headers=agent.auth).json
    assert record["source"] == "review" and record["label"] is None
    assert record["meta"]["review"]["reason"] == "possible_new_defect"
    assert record["meta"]["inspection"]["anomaly"]["peak"] == body["anomaly"]["peak"]


def test_a_broken_anomaly_file_says_load_failed_and_the_classifier_keeps_serving(agent_app):
    agent = agent_app(inspection=FAST)
    om.write_valid(agent.models_dir / "model.onnx", dominant="good", margin=9.0)
    deploy_anomaly(agent.models_dir, b"not an onnx file")
    deadline = time.monotonic() + 15
    ready = {"engine": "onnx", "anomaly_reason": "load_failed"}
    while {
        "engine": (body := inspect_upload(agent, flawed_frame(4)))["engine"],
        "anomaly_reason": body["anomaly"]["fallback_reason"],
    } != ready:
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    assert body["anomaly"]["engine"] is None and body["anomaly"]["anomalous"] is None
    assert body["label"] == "good" and body["review_capture_id"] is None
    status = agent.client.get(agent.api("status"), headers=agent.auth).json["anomaly"]
    assert status["active"] is None and status["reason"] == "load_failed" and status["last_error"]
