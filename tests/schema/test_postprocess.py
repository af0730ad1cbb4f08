"""The shared output contract: stable softmax, temperature, and the card's choice of both."""

from __future__ import annotations

import numpy as np
import pytest

from shared_schema import InputContract, ModelCard, default_weld_schema
from shared_schema.postprocess import model_probabilities, probabilities, softmax

SCHEMA = default_weld_schema()


def test_softmax_is_stable_for_huge_logits():
    p = softmax(np.array([[1000.0, 999.0, -1000.0], [0.0, 0.0, 0.0]]))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(1), 1.0)
    np.testing.assert_allclose(p[0, :2], [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1))])
    np.testing.assert_allclose(p[1], 1 / 3)


def test_temperature_divides_the_logits():
    logits = np.array([2.0, 1.0, -1.0], dtype=np.float32)
    for t in (0.25, 1.0, 3.0):
        expected = np.exp(logits.astype(np.float64) / t) / np.exp(logits.astype(np.float64) / t).sum()
        out = probabilities(logits, t)
        assert out.dtype == np.float64
        np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert probabilities(logits, 0.25).max() > probabilities(logits, 1.0).max() > probabilities(logits, 3.0).max()
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            probabilities(logits, bad)


def test_model_probabilities_follow_the_card():
    contract = InputContract(32, 32)
    logits = np.array([3.0, 0.5, 0.1, -2.0, 1.0])
    calibrated = ModelCard(tuple(SCHEMA.names), SCHEMA.hash, contract, temperature=2.0)
    np.testing.assert_allclose(model_probabilities(logits, calibrated), probabilities(logits, 2.0))
    assert not np.allclose(model_probabilities(logits, calibrated), softmax(logits))
    probs = np.array([0.6, 0.1, 0.1, 0.1, 0.1], dtype=np.float32)
    direct = ModelCard(tuple(SCHEMA.names), SCHEMA.hash, contract, output_kind="probabilities")
    np.testing.assert_array_equal(model_probabilities(probs, direct), probs.astype(np.float64))
