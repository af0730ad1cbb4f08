"""Check a model file on the desktop before it goes to a board: ``python deploy/check_model.py model.onnx``.

Reads the model card with ``shared_schema.read_model_card``, then loads the file exactly as the
agent does (``rdk_agent.inspection.onnx_model.OnnxClassifier``: the graph's input and output against
the card, and a smoke inference that must give finite probabilities) against the label schema of
the card's own labels, whose hash the card must carry; whether that is the board's schema is the
agent's check. On success it prints the file's sha256 on stdout (the summary goes to stderr); on
failure it prints why and exits with status 2.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from rdk_agent.inspection.onnx_model import ModelLoadError, OnnxClassifier
from shared_schema import ModelCard, label_schema_from_names, read_model_card


class ModelCheckError(ValueError):
    """The model must not be deployed; the message says why."""


def file_sha256(path: Path) -> str:
    """Hex sha256 of ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_model(path: Path) -> ModelCard:
    """Return the model's card when the agent would load the file; ModelCheckError otherwise."""
    if not path.is_file():
        raise ModelCheckError(f"{path} does not exist or is not a file")
    try:
        card = read_model_card(path)
    except ValueError as exc:  # no card, an invalid card, or a file ONNX Runtime cannot load
        raise ModelCheckError(str(exc)) from None
    schema = label_schema_from_names(list(card.labels))  # the hash binds the label names only
    if card.label_schema_hash != schema.hash:
        raise ModelCheckError(
            f"the card's label_schema_hash {card.label_schema_hash[:12]}… is not the hash of its labels "
            f"({schema.hash[:12]}…), so no agent can load it; re-export the model with desktop_trainer"
        )
    try:
        OnnxClassifier.from_file(path, schema)
    except ModelLoadError as exc:
        raise ModelCheckError(str(exc)) from None
    return card


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("model", type=Path)
    args = parser.parse_args(argv)
    try:
        card = check_model(args.model)
    except ModelCheckError as exc:
        print(f"deploy-model: refusing {args.model}: {exc}", file=sys.stderr)
        return 2
    metrics = ", ".join(f"{k}={v}" for k, v in card.metrics.items() if isinstance(v, (int, float))) or "none"
    print(
        f"deploy-model: card ok: {card.name} ({card.precision}), labels [{', '.join(card.labels)}], "
        f"schema {card.label_schema_hash[:12]}…, input {card.input.channels} {card.input.width}x{card.input.height}, "
        f"metrics: {metrics}",
        file=sys.stderr,
    )
    print(file_sha256(args.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
