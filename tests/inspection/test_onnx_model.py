"""OnnxClassifier on real ONNX Runtime sessions of tiny generated models."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import onnxruntime as ort
import pytest

from rdk_agent.inspection.deadline import DeadlineWatchdog
from rdk_agent.inspection.onnx_model import InferenceError, ModelLoadError, OnnxClassifier, session_options
from shared_schema import default_weld_schema, label_schema_from_names
from shared_schema.postprocess import probabilities
from shared_schema.preprocess import preprocess
from tests.helpers import onnx_models as om

SCHEMA = default_weld_schema()


def frame(value: int = 128) -> np.ndarray:
    return np.full((48, 64, 3), value, dtype=np.uint8)


def test_valid_model_loads_checks_and_predicts(tmp_path):
    path = om.write_valid(tmp_path / "model.onnx", dominant="spatter")
    clf = OnnxClassifier.from_file(path, SCHEMA, intra_op_threads=1)
    assert clf.labels == tuple(SCHEMA.names)
    assert clf.card.label_schema_hash == SCHEMA.hash
    assert clf.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert clf.warmup_ms > 0 and clf.load_ms >= clf.warmup_ms
    pred = clf.predict(frame(200))
    assert pred.label == "spatter" and pred.confidence > 0.99
    assert set(pred.by_name()) == set(SCHEMA.names)
    assert abs(sum(pred.by_name().values()) - 1.0) < 1e-4
    assert pred.inference_ms > 0 and pred.preprocess_ms > 0


def test_output_depends_on_the_input(tmp_path):
    clf = OnnxClassifier.from_file(om.write_valid(tmp_path / "m.onnx", margin=0.5), SCHEMA, 1)
    dark, bright = clf.predict(frame(10)).probabilities, clf.predict(frame(250)).probabilities
    assert not np.allclose(dark, bright)


def test_the_cards_temperature_scales_the_logits(tmp_path):
    """Probabilities are softmax(raw logits / T) with the card's T: the function the trainer uses too."""
    path = om.write_valid(tmp_path / "m.onnx", dominant="gap", margin=2.0, temperature=0.4)
    clf = OnnxClassifier.from_file(path, SCHEMA, 1)
    assert clf.card.temperature == 0.4
    image = frame(170)
    raw_session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = raw_session.run(None, {"input": preprocess(image, clf.card.input)[None]})
    probs = clf.predict(image).probabilities
    np.testing.assert_allclose(probs, probabilities(logits[0], 0.4), atol=1e-7)
    assert np.abs(probs - probabilities(logits[0], 1.0)).max() > 0.05, "T = 0.4 must visibly sharpen the output"


def test_low_confidence_model_is_near_uniform(tmp_path):
    clf = OnnxClassifier.from_file(om.write_low_confidence(tmp_path / "m.onnx"), SCHEMA, 1)
    assert clf.predict(frame()).confidence < 0.3


@pytest.mark.parametrize(
    ("writer", "reason", "code"),
    [
        (om.write_truncated, "load_failed", "not_onnx"),
        (om.write_random_bytes, "load_failed", "not_onnx"),
        (om.write_no_card, "load_failed", "no_card"),
        (om.write_invalid_card, "load_failed", "invalid_card"),
        (om.write_wrong_schema_hash, "schema_mismatch", "schema_mismatch"),
        (om.write_wrong_input_shape, "load_failed", "input_mismatch"),
        (om.write_nan_output, "load_failed", "smoke_failed"),
    ],
)
def test_refused_models_say_why(tmp_path, writer, reason, code):
    path = writer(tmp_path / "model.onnx")
    with pytest.raises(ModelLoadError) as err:
        OnnxClassifier.from_file(path, SCHEMA, 1)
    assert (err.value.reason, err.value.code) == (reason, code)
    assert err.value.message


def test_model_for_another_schema_is_refused(tmp_path):
    other = label_schema_from_names(["ok", "crack"], name="castings")
    path = om.write_valid(tmp_path / "castings.onnx", other)
    assert OnnxClassifier.from_file(path, other, 1).labels == ("ok", "crack")
    with pytest.raises(ModelLoadError) as err:
        OnnxClassifier.from_file(path, SCHEMA, 1)
    assert err.value.reason == "schema_mismatch"


def test_missing_file_is_unreadable(tmp_path):
    with pytest.raises(ModelLoadError) as err:
        OnnxClassifier.from_file(tmp_path / "absent.onnx", SCHEMA, 1)
    assert err.value.code == "unreadable"


def test_nan_on_some_inputs_is_an_inference_error(tmp_path):
    clf = OnnxClassifier.from_file(om.write_nan_on_dark(tmp_path / "m.onnx"), SCHEMA, 1)
    assert clf.predict(frame(200)).label == "good"
    with pytest.raises(InferenceError) as err:
        clf.predict(frame(20))
    assert "not finite" in str(err.value) and not err.value.timed_out


def test_board_session_options():
    opts = session_options(4)
    assert opts.intra_op_num_threads == 4 and opts.inter_op_num_threads == 1
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


def test_deadline_stops_a_slow_run_and_frees_the_thread(tmp_path):
    clf = OnnxClassifier.from_file(om.write_slow(tmp_path / "slow.onnx"), SCHEMA, 1)
    assert clf.warmup_ms > 150, "the slow model must be slower than the deadline used below"
    watchdog = DeadlineWatchdog()
    try:
        started = time.perf_counter()
        with pytest.raises(InferenceError) as err, watchdog.deadline(0.05) as options:
            clf.predict(frame(), run_options=options)
        elapsed = time.perf_counter() - started
        assert err.value.timed_out
        assert elapsed < clf.warmup_ms / 1000.0 * 0.8, f"terminated run took {elapsed:.3f}s"
        with watchdog.deadline(30.0) as options:  # a generous deadline lets it finish
            assert clf.predict(frame(), run_options=options).label == "good"
    finally:
        watchdog.stop()
