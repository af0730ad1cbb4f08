"""Post-hoc calibration without training: temperature fit, threshold choice, stratified calibration sets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from desktop_trainer.data.samples import Sample
from desktop_trainer.evaluation import (
    calibration_metrics,
    choose_threshold,
    fit_temperature,
    nll,
    recommend_thresholds,
)
from desktop_trainer.finalize import stratified
from shared_schema.postprocess import probabilities


def calibrated_data(n: int = 3000, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits): these logits are calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, (n, k))
    probs = probabilities(logits)
    targets = np.array([rng.choice(k, p=p) for p in probs])
    return logits, targets


@pytest.mark.parametrize("scale", [3.0, 0.4])
def test_temperature_undoes_over_and_under_confidence(scale):
    logits, targets = calibrated_data()
    distorted = logits * scale  # scale 3: over-confident; 0.4: under-confident
    temperature = fit_temperature(distorted, targets)
    assert temperature == pytest.approx(scale, rel=0.1)
    before, after = calibration_metrics(distorted, targets), calibration_metrics(distorted, targets, temperature)
    assert after["nll"] < before["nll"] - 0.05
    assert after["ece"] < 0.03 < before["ece"]
    assert after["nll"] == pytest.approx(nll(distorted, targets, temperature), abs=1e-5)
    assert fit_temperature(distorted, targets) == temperature, "deterministic"


def test_temperature_stays_in_bounds_and_defaults_to_one():
    separable = np.eye(4)[np.arange(40) % 4] * 5.0
    targets = np.arange(40) % 4
    assert fit_temperature(separable, targets, bounds=(0.1, 10.0)) == pytest.approx(0.1, rel=1e-3)
    assert fit_temperature(np.zeros((10, 3)), np.arange(10) % 3) == 1.0, "a flat NLL keeps T = 1"
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, np.int64)) == 1.0


def constructed() -> tuple[np.ndarray, np.ndarray]:
    """50 correct predictions at 0.999 (20), 0.99 (20) and 0.9 (10); 10 at 0.7 of which 2 are wrong."""
    confidence = np.array([0.999] * 20 + [0.99] * 20 + [0.9] * 10 + [0.7] * 10)
    correct = np.ones(60, bool)
    correct[[52, 57]] = False
    return confidence, correct


def test_threshold_is_the_lowest_whose_accepted_predictions_reach_the_precision():
    confidence, correct = constructed()
    # accepting from 0.9 down would be 100% correct empirically, but the mean confidence (0.976) says the
    # set cannot be trusted at 99%; from 0.99 the accepted 40 average 0.9945.
    accept = choose_threshold(confidence, correct, 0.99, min_accepted=10)
    assert accept["threshold"] == 0.99 and accept["accepted"] == 40
    assert accept["precision"] == 1.0 and accept["mean_confidence"] == pytest.approx(0.9945)
    assert choose_threshold(confidence, correct, 0.995, min_accepted=10)["threshold"] == 0.999
    assert choose_threshold(confidence, correct, 0.95, min_accepted=10)["threshold"] == 0.9
    # too few accepted predictions at 0.999 for a 0.995 review threshold: none is recommended
    missed = choose_threshold(confidence, correct, 0.995, min_accepted=25)
    assert missed["threshold"] is None and missed["accepted"] == 40


def test_an_error_at_high_confidence_blocks_the_threshold():
    confidence = np.full(40, 0.999)
    correct = np.ones(40, bool)
    correct[3] = False  # 39 of 40 correct among ties: 97.5% whatever the threshold
    assert choose_threshold(confidence, correct, 0.99, min_accepted=5)["threshold"] is None
    assert choose_threshold(confidence, correct, 0.97, min_accepted=5)["threshold"] == 0.999


def test_recommended_thresholds_keep_review_above_confidence_and_say_what_was_missed():
    confidence, correct = constructed()
    k = 3
    labels = np.arange(len(confidence)) % k
    probs = np.zeros((len(confidence), k))
    for i, (c, ok) in enumerate(zip(confidence, correct, strict=True)):
        top = labels[i] if ok else (labels[i] + 1) % k
        probs[i] = (1 - c) / (k - 1)
        probs[i, top] = c
    both = recommend_thresholds(probs, labels, 0.99, 0.995, min_accepted=10)
    assert (both["confidence"]["threshold"], both["review"]["threshold"]) == (0.99, 0.999)
    assert both["note"] == ""
    review_missed = recommend_thresholds(probs, labels, 0.99, 0.995, min_accepted=25)
    assert review_missed["confidence"]["threshold"] == 0.99 and review_missed["review"]["threshold"] is None
    assert "review precision 0.995" in review_missed["note"] and "accept precision" not in review_missed["note"]
    none = recommend_thresholds(probs[:8], labels[:8], 0.99, 0.995, min_accepted=10)
    assert none["confidence"]["threshold"] is None and "accept precision 0.99" in none["note"]
    empty = recommend_thresholds(np.zeros((0, 0)), np.zeros(0, np.int64))
    assert empty["confidence"]["threshold"] is None and empty["review"]["threshold"] is None and empty["note"]


def samples(counts: dict[str, int]) -> list[Sample]:
    """Label-sorted samples, as a split lists them."""
    return [Sample(f"{label}-{i}", label, Path(f"{label}/{i}.png")) for label, n in counts.items() for i in range(n)]


def test_calibration_set_holds_every_class_in_proportion():
    train = samples({"break": 3, "crack": 4, "free": 100, "fray": 2, "uneven": 5})
    chosen = stratified(train, 12)
    counts = Counter(s.label for s in chosen)
    assert len(chosen) == 12 and set(counts) == {"break", "crack", "free", "fray", "uneven"}
    assert counts["free"] == 8 and all(counts[k] == 1 for k in ("break", "crack", "fray", "uneven"))
    assert len({s.id for s in chosen}) == 12
    assert [s.label for s in chosen[:5]] == ["break", "crack", "free", "fray", "uneven"], "classes interleaved"
    assert stratified(train, 12) == chosen, "deterministic"
    proportional = Counter(s.label for s in stratified(train, 57))
    assert proportional == {"free": 50, "uneven": 2, "crack": 2, "break": 2, "fray": 1}


def test_calibration_set_takes_one_per_class_even_below_the_class_count_and_never_repeats():
    train = samples({"a": 50, "b": 1, "c": 1})
    assert Counter(s.label for s in stratified(train, 2)) == {"a": 1, "b": 1, "c": 1}
    everything = stratified(train, 500)
    assert sorted(s.id for s in everything) == sorted(s.id for s in train)
    assert stratified([], 10) == []


def test_review_budget_caps_thresholds_at_the_least_confident_frames():
    rng = np.random.default_rng(0)
    n, k = 200, 3
    labels = rng.integers(0, k, n)
    confidence = rng.uniform(0.4, 1.0, n)
    correct = rng.uniform(0, 1, n) < confidence  # a mediocre model: 99 % precision needs a high threshold
    probs = np.zeros((n, k))
    for i in range(n):
        top = labels[i] if correct[i] else (labels[i] + 1) % k
        probs[i] = (1 - confidence[i]) / (k - 1)
        probs[i, top] = confidence[i]
    free = recommend_thresholds(probs, labels, 0.99, 0.995, min_accepted=10)
    assert (confidence < (free["review"]["threshold"] or 1.0)).mean() > 0.3  # the targets alone queue a third
    capped = recommend_thresholds(probs, labels, 0.99, 0.995, min_accepted=10, review_budget=0.05)
    for name in ("confidence", "review"):
        choice = capped[name]
        assert choice["capped_by_budget"] and (confidence < choice["threshold"]).mean() <= 0.05
        assert choice["precision"] == round(float(correct[confidence >= choice["threshold"]].mean()), 4)
    assert "review budget (5% of frames)" in capped["note"]
    loose = recommend_thresholds(probs, labels, 0.6, 0.6, min_accepted=10, review_budget=0.5)
    assert not loose["review"].get("capped_by_budget") and loose["note"] == ""
