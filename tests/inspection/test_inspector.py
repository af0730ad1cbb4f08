"""Inspector engine choice: each fallback reason with real ONNX Runtime sessions and the real rules."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from rdk_agent.camera.synthetic import SyntheticWeldGenerator
from rdk_agent.inspection.inspector import FALLBACK_REASONS, Inspector
from rdk_agent.inspection.model_manager import ModelManager
from rdk_agent.inspection.rubric import Rubric
from rdk_agent.inspection.rules import RuleEvaluator
from rdk_agent.inspection.settings import InspectionSettings
from rdk_agent.inspection.thresholds import needs_review
from rdk_agent.telemetry import Telemetry
from shared_schema import default_weld_schema
from tests.helpers import onnx_models as om

SCHEMA = default_weld_schema()
STAGES = {"decode", "preprocess", "inference", "rules", "heatmap", "total"}


@pytest.fixture(scope="module")
def weld_frame():
    return SyntheticWeldGenerator(seed=3).generate("good")


@pytest.fixture
def make_inspector(tmp_path):
    made: list[Inspector] = []

    def make(writer=None, **overrides) -> Inspector:
        settings = InspectionSettings(**{"intra_op_threads": 1, "poll_interval_s": 5.0, **overrides})
        models_dir = tmp_path / f"models{len(made)}"
        models_dir.mkdir()
        if writer is not None:
            writer(models_dir / "model.onnx")
        models = ModelManager(models_dir, SCHEMA, settings, Telemetry())
        models.start()
        inspector = Inspector(models, RuleEvaluator(Rubric.from_dict({}), SCHEMA), settings)
        made.append(inspector)
        return inspector

    yield make
    for inspector in made:
        inspector.models.stop()
        inspector.close()


def check_rules_ran(result: dict) -> None:
    assert result["rules"] is not None and "error" not in result["rules"]
    assert result["rules"]["measures"], "rule measures are always computed"
    assert set(result["latency_ms"]) == STAGES
    assert result["latency_ms"]["rules"] > 0
    assert result["latency_ms"]["total"] >= max(result["latency_ms"]["inference"], result["latency_ms"]["rules"])


@pytest.mark.parametrize("parallel", [True, False])
def test_confident_model_decides(make_inspector, weld_frame, parallel):
    inspector = make_inspector(lambda p: om.write_valid(p, dominant="porosity"), parallel_rules=parallel)
    result = inspector.inspect(weld_frame.rgb, weld_frame.depth, decode_ms=1.5)
    assert (result["engine"], result["fallback_reason"], result["label"]) == ("onnx", None, "porosity")
    assert result["confidence"] > 0.99
    assert set(result["probabilities"]) == set(SCHEMA.names)
    assert result["model"]["sha256"] == inspector.models.active.classifier.sha256
    assert result["latency_ms"]["decode"] == 1.5 and result["latency_ms"]["inference"] > 0
    check_rules_ran(result)
    assert inspector.telemetry.inspections.value(engine="onnx", label="porosity") == 1


@pytest.mark.parametrize(
    ("writer", "reason"),
    [
        (None, "no_model"),
        (om.write_truncated, "load_failed"),
        (om.write_random_bytes, "load_failed"),
        (om.write_no_card, "load_failed"),
        (om.write_wrong_input_shape, "load_failed"),
        (om.write_nan_output, "load_failed"),
        (om.write_wrong_schema_hash, "schema_mismatch"),
        (om.write_low_confidence, "low_confidence"),
    ],
)
def test_rules_decide_with_the_reason(make_inspector, weld_frame, writer, reason):
    inspector = make_inspector(writer)
    result = inspector.inspect(weld_frame.rgb, weld_frame.depth)
    assert result["engine"] == "rules" and result["fallback_reason"] == reason
    assert result["label"] == result["rules"]["label"]
    check_rules_ran(result)
    if reason == "low_confidence":  # the model ran: its probabilities are shown next to the rules
        assert result["onnx"]["confidence"] < 0.6 and len(result["probabilities"]) == len(SCHEMA.names)
        assert needs_review(result)
    else:
        assert result["probabilities"] == {} and result["onnx"] is None
        assert not needs_review(result)
    assert inspector.telemetry.fallbacks.value(reason=reason) == 1


def test_inference_error_on_some_frames(make_inspector, weld_frame):
    inspector = make_inspector(om.write_nan_on_dark)
    dark = np.full((240, 320, 3), 15, dtype=np.uint8)
    result = inspector.inspect(dark, None)
    assert (result["engine"], result["fallback_reason"]) == ("rules", "inference_error")
    assert "not finite" in result["error"]
    bright = np.full((240, 320, 3), 200, dtype=np.uint8)
    assert inspector.inspect(bright, None)["engine"] == "onnx", "the same model still serves other frames"


def test_timeout_then_rest_after_repeated_timeouts(make_inspector, weld_frame):
    inspector = make_inspector(om.write_slow, timeout_ms=60, max_consecutive_timeouts=2)
    warmup_ms = inspector.models.active.classifier.warmup_ms
    assert warmup_ms > 200, "the slow model must be well past the timeout"
    for _ in range(2):
        result = inspector.inspect(weld_frame.rgb, weld_frame.depth)
        assert (result["engine"], result["fallback_reason"]) == ("rules", "timeout")
        assert result["latency_ms"]["total"] < warmup_ms * 0.8, "a timed-out run is stopped, not awaited"
    assert not inspector.models.active.health.available()
    result = inspector.inspect(weld_frame.rgb, weld_frame.depth)
    assert result["fallback_reason"] == "timeout" and "rests" in result["error"]
    assert threading.active_count() < 20, "no thread per timed-out request"


def test_concurrent_inspections_are_consistent(make_inspector, weld_frame):
    inspector = make_inspector(lambda p: om.write_valid(p, dominant="gap"))
    results, errors = [], []

    def worker():
        try:
            for _ in range(5):
                results.append(inspector.inspect(weld_frame.rgb, weld_frame.depth))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 30
    assert {(r["engine"], r["label"]) for r in results} == {("onnx", "gap")}


def test_reasons_are_the_documented_set():
    assert FALLBACK_REASONS == (
        "no_model",
        "load_failed",
        "schema_mismatch",
        "inference_error",
        "timeout",
        "low_confidence",
    )


def test_on_fallback_skips_the_rules_when_the_model_decides(make_inspector, weld_frame):
    inspector = make_inspector(lambda p: om.write_valid(p, dominant="spatter"), rules="on_fallback")
    for _ in range(2):
        result = inspector.inspect(weld_frame.rgb, weld_frame.depth)
        assert (result["engine"], result["fallback_reason"], result["label"]) == ("onnx", None, "spatter")
        assert result["rules"] is None and result["latency_ms"]["rules"] == 0.0
        assert result["onnx"]["label"] == "spatter" and result["latency_ms"]["inference"] > 0


@pytest.mark.parametrize(
    ("writer", "reason"),
    [(None, "no_model"), (om.write_wrong_schema_hash, "schema_mismatch"), (om.write_low_confidence, "low_confidence")],
)
def test_on_fallback_runs_the_rules_when_the_model_cannot_decide(make_inspector, weld_frame, writer, reason):
    inspector = make_inspector(writer, rules="on_fallback")
    result = inspector.inspect(weld_frame.rgb, weld_frame.depth)
    assert (result["engine"], result["fallback_reason"]) == ("rules", reason)
    assert result["label"] == result["rules"]["label"]
    check_rules_ran(result)


def test_on_fallback_after_an_inference_error(make_inspector):
    inspector = make_inspector(om.write_nan_on_dark, rules="on_fallback")
    dark = np.full((240, 320, 3), 15, dtype=np.uint8)
    result = inspector.inspect(dark, None)
    assert (result["engine"], result["fallback_reason"]) == ("rules", "inference_error")
    assert result["rules"] is not None and result["label"] == result["rules"]["label"]
    bright = inspector.inspect(np.full((240, 320, 3), 200, dtype=np.uint8), None)
    assert bright["engine"] == "onnx" and bright["rules"] is None


def test_rules_mode_is_validated():
    assert InspectionSettings.from_dict({"rules": "on_fallback"}).rules == "on_fallback"
    assert InspectionSettings().rules == "always"
    with pytest.raises(ValueError, match="always, on_fallback"):
        InspectionSettings.from_dict({"rules": "sometimes"})


def porosity_model(margin: float = 2.0, **card_fields):
    """A writer for a classifier that calls the weld frame porosity; margin 2.0 gives about 0.83 at T = 1."""
    return lambda p: om.write_valid(p, dominant="porosity", margin=margin, **card_fields)


def thresholds(confidence: float, review: float, confidence_source: str, review_source: str) -> dict:
    return {
        "confidence": confidence,
        "review": review,
        "source": {"confidence": confidence_source, "review": review_source},
    }


def test_the_cards_thresholds_apply_unless_the_station_sets_its_own(make_inspector, weld_frame):
    card = {"confidence_threshold": 0.9, "review_threshold": 0.95}
    by_card = make_inspector(porosity_model(**card)).inspect(weld_frame.rgb, weld_frame.depth)
    assert 0.8 < by_card["onnx"]["confidence"] < 0.9, "the model must sit between the card's and the station's values"
    assert (by_card["engine"], by_card["fallback_reason"]) == ("rules", "low_confidence")
    assert by_card["thresholds"] == thresholds(0.9, 0.95, "card", "card")
    assert needs_review(by_card)

    station = make_inspector(porosity_model(**card), confidence_threshold=0.7, review_threshold=0.8)
    result = station.inspect(weld_frame.rgb, weld_frame.depth)
    assert (result["engine"], result["fallback_reason"], result["label"]) == ("onnx", None, "porosity")
    assert result["thresholds"] == thresholds(0.7, 0.8, "station", "station")
    assert not needs_review(result)

    mixed = make_inspector(porosity_model(**card), confidence_threshold=0.7).inspect(weld_frame.rgb, weld_frame.depth)
    assert (mixed["engine"], mixed["thresholds"]) == ("onnx", thresholds(0.7, 0.95, "station", "card"))
    assert needs_review(mixed), "the model decides, and the card's review threshold still queues the frame"


def test_without_card_thresholds_the_old_defaults_apply(make_inspector, weld_frame):
    result = make_inspector(porosity_model(margin=1.0)).inspect(weld_frame.rgb, weld_frame.depth)
    assert 0.6 < result["onnx"]["confidence"] < 0.75
    assert (result["engine"], result["thresholds"]) == ("onnx", thresholds(0.6, 0.75, "default", "default"))
    assert needs_review(result)
    no_model = make_inspector().inspect(weld_frame.rgb, weld_frame.depth)
    assert no_model["thresholds"] == thresholds(0.6, 0.75, "default", "default")


def test_review_threshold_is_never_below_the_confidence_threshold_unless_the_station_says_so(
    make_inspector, weld_frame
):
    only_confidence = make_inspector(porosity_model(confidence_threshold=0.9))
    result = only_confidence.inspect(weld_frame.rgb, weld_frame.depth)
    assert result["thresholds"] == thresholds(0.9, 0.9, "card", "confidence_threshold")
    assert result["fallback_reason"] == "low_confidence" and needs_review(result)
    station = make_inspector(porosity_model(confidence_threshold=0.9), review_threshold=0.5)
    assert station.inspect(weld_frame.rgb, weld_frame.depth)["thresholds"] == thresholds(0.9, 0.5, "card", "station")


def test_the_cards_temperature_sets_the_confidence_the_thresholds_see(make_inspector, weld_frame):
    card = {"confidence_threshold": 0.9, "review_threshold": 0.95}
    sharp = make_inspector(porosity_model(temperature=0.5, **card)).inspect(weld_frame.rgb, weld_frame.depth)
    assert sharp["onnx"]["confidence"] > 0.95, "T = 0.5 doubles the logits: the same frame is now confident"
    assert (sharp["engine"], sharp["label"]) == ("onnx", "porosity") and not needs_review(sharp)
    soft = make_inspector(porosity_model(temperature=4.0)).inspect(weld_frame.rgb, weld_frame.depth)
    assert soft["onnx"]["confidence"] < 0.6 and soft["fallback_reason"] == "low_confidence"


def test_station_thresholds_are_optional_and_validated():
    assert InspectionSettings().confidence_threshold is None and InspectionSettings().review_threshold is None
    assert InspectionSettings.from_dict({"confidence_threshold": 0.8}).confidence_threshold == 0.8
    with pytest.raises(ValueError, match="review_threshold"):
        InspectionSettings.from_dict({"review_threshold": 1.5})
