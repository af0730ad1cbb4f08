"""The rule-based evaluator on synthetic welds of every label (with and without depth), odd images, schemas, rubric."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rdk_agent.camera.synthetic import LABELS, SyntheticWeldGenerator
from rdk_agent.inspection.rubric import Rubric, RubricError
from rdk_agent.inspection.rules import RuleEvaluator, RuleResult
from shared_schema import Label, LabelSchema, default_weld_schema, label_schema_from_names

PER_LABEL = 8


@pytest.fixture(scope="module")
def graded() -> dict[str, list[tuple[dict, RuleResult]]]:
    """Frames of each label from a seed the rules were not tuned on, with the rules' result."""
    gen, rules = SyntheticWeldGenerator(seed=31), RuleEvaluator(Rubric(), default_weld_schema())
    out: dict[str, list[tuple[dict, RuleResult]]] = {label: [] for label in LABELS}
    for _ in range(PER_LABEL):
        for label in LABELS:
            frame = gen.generate(label)
            out[label].append((frame.meta, rules.evaluate(frame.rgb, frame.depth)))
    return out


def _labels(results) -> list[str | None]:
    return [r.label for _, r in results]


def _mean(results, key: str) -> float:
    return float(np.mean([r.measures[key] for _, r in results]))


def test_good_welds_mostly_pass(graded):
    good = graded["good"]
    assert sum(r.passed for _, r in good) >= PER_LABEL - 2
    assert _labels(good).count("good") >= PER_LABEL - 2


@pytest.mark.parametrize("label", ["porosity", "spatter", "gap", "undercut"])
def test_defect_frames_mostly_get_their_label(graded, label):
    assert _labels(graded[label]).count(label) >= PER_LABEL // 2 + 1, _labels(graded[label])
    assert not any(r.passed for _, r in graded[label] if r.label == label)


def test_defect_measures_rise_on_their_own_class(graded):
    assert _mean(graded["porosity"], "pores") > _mean(graded["good"], "pores") + 1
    assert _mean(graded["spatter"], "spatter") > _mean(graded["good"], "spatter") + 2
    assert _mean(graded["gap"], "gap_mm") > 3 * (_mean(graded["good"], "gap_mm") + 1)
    assert _mean(graded["undercut"], "undercut_mm") > 3 * (_mean(graded["good"], "undercut_mm") + 1)


def test_height_from_depth_and_width_track_the_bead(graded):
    height_err, width_ratio = [], []
    for results in graded.values():
        for meta, r in results:
            if r.measures.get("height_mm") is not None:
                height_err.append(abs(r.measures["height_mm"] - meta["bead"]["height_mm"]))
            if meta["label"] != "undercut":  # a groove can merge into the bead outline
                width_ratio.append(r.measures["width_mm"] / meta["bead"]["width_mm"])
    assert len(height_err) >= len(LABELS) * PER_LABEL - 2
    assert np.median(height_err) < 0.35
    assert 0.6 < np.median(width_ratio) < 1.15


def test_without_depth_the_image_alone_decides():
    gen, rules = SyntheticWeldGenerator(seed=41), RuleEvaluator()
    frame = gen.generate("gap")
    result = rules.evaluate(frame.rgb, None)
    assert result.measures["height_mm"] is None
    assert "height" not in result.defects and result.label == "gap"
    with_depth = rules.evaluate(frame.rgb, frame.depth)
    assert with_depth.measures["height_mm"] is not None


def test_result_shape_and_score_semantics(graded):
    for results in graded.values():
        for _, r in results:
            d = json.loads(json.dumps(r.to_dict()))
            assert set(d) == {"passed", "score", "label", "defects", "reasons", "measures", "latency_ms"}
            assert 0.0 <= d["score"] <= 1.0 and (d["score"] >= 0.5) == d["passed"]
            assert d["latency_ms"] > 0 and len(d["reasons"]) == len(d["defects"])


DEGENERATE = {
    "grey": np.full((480, 640, 3), 128, np.uint8),
    "black": np.zeros((480, 640, 3), np.uint8),
    "white": np.full((480, 640, 3), 255, np.uint8),
    "noise": np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8),
    "tiny": np.zeros((3, 3, 3), np.uint8),
    "one_pixel_grey": np.zeros((1, 1), np.uint8),
    "empty": np.zeros((0, 0, 3), np.uint8),
    "odd_size": np.random.default_rng(1).integers(0, 256, (37, 301, 3), dtype=np.uint8),
    "thin_tall": np.full((400, 17, 3), 90, np.uint8),
    "grey_2d": np.random.default_rng(2).integers(0, 256, (100, 120), dtype=np.uint8),
    "bgra": np.full((64, 64, 4), 200, np.uint8),
    "float_0_1": np.random.default_rng(3).random((50, 60, 3)),
    "uint16": np.full((60, 80, 3), 40000, np.uint16),
    "nan": np.full((30, 30), np.nan),
    "one_d": np.zeros(10),
    "two_channels": np.zeros((40, 40, 2), np.uint8),
    "stripes": np.tile(np.array([0, 255], np.uint8).repeat(8), (120, 10)),
}


@pytest.mark.parametrize("name", list(DEGENERATE))
def test_never_crashes_on_odd_images(name):
    image = DEGENERATE[name]
    rules = RuleEvaluator()
    shape = image.shape[:2] if image.ndim >= 2 else (1, 1)
    for depth in (None, np.zeros(shape, np.uint16), np.full(shape, 300, np.uint16), np.zeros((5, 5), np.uint16)):
        result = rules.evaluate(image, depth)
        assert isinstance(result.passed, bool) and 0.0 <= result.score <= 1.0
        json.dumps(result.to_dict())
        if not result.passed:
            assert result.defects and result.reasons


def test_flat_images_have_no_bead_and_map_to_gap():
    result = RuleEvaluator().evaluate(DEGENERATE["grey"], None)
    assert result.measures["bead_found"] is False
    assert result.defects == ["gap"] and result.label == "gap" and not result.passed


def test_non_weld_schema_gives_pass_fail_only():
    schema = label_schema_from_names(["ok", "crack", "dent"], name="castings")
    rules = RuleEvaluator(Rubric(), schema)
    gen = SyntheticWeldGenerator(seed=51)
    failed = rules.evaluate(DEGENERATE["black"], None)
    assert not failed.passed and failed.label is None and failed.defects == ["gap"]
    passes = [r for r in (rules.evaluate(gen.generate("good").rgb) for _ in range(4)) if r.passed]
    assert passes and all(r.label == "ok" for r in passes)


def test_weld_schema_without_a_defect_label_falls_back_to_good():
    schema = LabelSchema(name="weld-lite", labels=(Label("good", is_defect=False), Label("porosity")))
    result = RuleEvaluator(Rubric(), schema).evaluate(DEGENERATE["black"], None)
    assert not result.passed and result.defects == ["gap"] and result.label == "good"


def test_rubric_limits_change_the_verdict():
    frame = SyntheticWeldGenerator(seed=61).generate("porosity")
    strict = RuleEvaluator(Rubric()).evaluate(frame.rgb, frame.depth)
    assert "porosity" in strict.defects
    lenient = RuleEvaluator(Rubric(max_pores=50)).evaluate(frame.rgb, frame.depth)
    assert "porosity" not in lenient.defects
    coarse = RuleEvaluator(Rubric(mm_per_px=0.25)).evaluate(frame.rgb, frame.depth)
    assert coarse.measures["width_mm"] > 1.5 * strict.measures["width_mm"]


def test_rubric_from_dict():
    rubric = Rubric.from_dict({"target_width_mm": 6, "max_pores": 1, "pore_area_mm2": [0.1, 3]})
    assert rubric.target_width_mm == 6 and rubric.max_pores == 1 and rubric.pore_area_mm2 == (0.1, 3)
    assert Rubric.from_dict(rubric.to_dict()) == rubric
    assert Rubric.from_dict({}) == Rubric()
    with pytest.raises(RubricError, match="expected a JSON object"):
        Rubric.from_dict([1, 2])


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"max_pore": 1}, "max_pore", "unknown setting"),
        ({"max_pores": 1.5}, "max_pores", "expected an integer"),
        ({"max_pores": True}, "max_pores", "expected an integer"),
        ({"target_width_mm": "8"}, "target_width_mm", "expected a number"),
        ({"width_tolerance_mm": -1}, "width_tolerance_mm", "must not be negative"),
        ({"mm_per_px": 0}, "mm_per_px", "must be positive"),
        ({"pore_area_mm2": [3, 1]}, "pore_area_mm2", "min < max"),
        ({"pore_area_mm2": 3}, "pore_area_mm2", "expected [min, max]"),
        ({"min_uniformity": 1.5}, "min_uniformity", "(0, 1]"),
        ({"target_height_mm": float("nan")}, "target_height_mm", "finite"),
    ],
)
def test_rubric_errors_name_the_field(data, field, message):
    with pytest.raises(RubricError) as err:
        Rubric.from_dict(data)
    assert err.value.field == field and message in str(err.value) and f"rubric.{field}" in str(err.value)


def test_one_evaluator_serves_threads_in_parallel():
    gen, rules = SyntheticWeldGenerator(seed=71, width=320, height=240), RuleEvaluator(Rubric(mm_per_px=0.25))
    frames = [gen.generate(label) for label in LABELS]
    expected = [rules.evaluate(f.rgb, f.depth).to_dict() for f in frames]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda f: rules.evaluate(f.rgb, f.depth).to_dict(), frames * 3))
    for i, result in enumerate(got):
        result.pop("latency_ms")
        want = dict(expected[i % len(frames)])
        want.pop("latency_ms")
        assert result == want
