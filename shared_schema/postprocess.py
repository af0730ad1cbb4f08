"""The one implementation of the model-output contract, shared by trainer and agent.

A model card with ``output_kind == "logits"`` carries a calibration ``temperature``; class
probabilities are ``softmax(logits / temperature)``. The trainer's evaluation and the agent's
classifier both call :func:`model_probabilities`, so they report the same numbers for the same
model outputs.
"""

from __future__ import annotations

import numpy as np

from shared_schema.model_card import ModelCard


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Calibrated class probabilities ``softmax(logits / temperature)`` over the last axis, in float64."""
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be finite and positive, got {temperature}")
    return softmax(np.asarray(logits, dtype=np.float64) / float(temperature))


def model_probabilities(outputs: np.ndarray, card: ModelCard) -> np.ndarray:
    """Class probabilities of a model's outputs under its card, in float64.

    ``softmax(outputs / card.temperature)`` for logits; outputs that already are probabilities
    pass through unchanged.
    """
    if card.output_kind == "probabilities":
        return np.asarray(outputs, dtype=np.float64)
    return probabilities(outputs, card.temperature)
