"""The one reader of the model card embedded in an ONNX file's metadata (agent, trainer, deploy, bench).

Only :func:`read_model_card` needs ONNX Runtime, and imports it when called, so that
``shared_schema`` stays importable without it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from shared_schema.errors import SchemaError
from shared_schema.model_card import METADATA_KEY, ModelCard


class ModelCardError(SchemaError):
    """A model's card is missing (``missing``) or invalid; the message names the model and the fix."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__("", message)
        self.missing = missing


def card_from_metadata(metadata: Mapping[str, str], where: str) -> ModelCard:
    """Parse the card stored under ``METADATA_KEY`` in an ONNX model's metadata.

    ``where`` names the model in the error (a path, or "the model"). Raises ModelCardError when
    the key is absent or its value is not a valid card.
    """
    text = metadata.get(METADATA_KEY)
    if text is None:
        raise ModelCardError(
            f"{where} has no model card (ONNX metadata key {METADATA_KEY!r}); "
            "export the model with desktop_trainer, which embeds the card",
            missing=True,
        )
    try:
        return ModelCard.from_json(text)
    except SchemaError as exc:
        # An unsupported card version already says what to update.
        fix = "" if exc.field == "card_version" else "; re-export the model with desktop_trainer"
        raise ModelCardError(f"{where}: the model card is invalid: {exc}{fix}") from None


def read_model_card(path: str | os.PathLike[str]) -> ModelCard:
    """The card of the ONNX file at ``path``, read with ONNX Runtime (no graph optimisation, no run).

    Raises ModelCardError for a missing or invalid card, and ValueError when ONNX Runtime cannot
    load the file at all.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3  # errors only; the failure is raised below
    try:
        session = ort.InferenceSession(os.fspath(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for every kind of bad file
        first = str(exc).strip().splitlines()
        raise ValueError(f"ONNX Runtime cannot load {path}: {first[0] if first else type(exc).__name__}") from None
    return card_from_metadata(session.get_modelmeta().custom_metadata_map, str(path))
