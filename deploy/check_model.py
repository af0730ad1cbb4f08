"""Check a model file on the desktop before it goes to a board: ``python deploy/check_model.py model.onnx``.

Loads the file with ONNX Runtime, parses the model card from the metadata key
``shared_schema.METADATA_KEY`` into a ``shared_schema.ModelCard``, checks that the graph's input and
output agree with the card (tensor names, channels, size, number of labels), and runs one inference
on a zero input, which must give finite outputs. On success it prints the file's sha256 on stdout
(the summary goes to stderr); on failure it prints why and exits with status 2.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from shared_schema import METADATA_KEY, ModelCard, SchemaError


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
    """Return the model's card when the file is fit to deploy; ModelCheckError otherwise."""
    if not path.is_file():
        raise ModelCheckError(f"{path} does not exist or is not a file")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises several exception types for unreadable models
        raise ModelCheckError(f"ONNX Runtime cannot load {path}: {exc}") from None
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if text is None:
        raise ModelCheckError(
            f"{path} has no model card (ONNX metadata key {METADATA_KEY!r}); export it with desktop_trainer"
        )
    try:
        card = ModelCard.from_json(text)
    except SchemaError as exc:
        raise ModelCheckError(f"{path}: the model card is invalid: {exc}") from None
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    contract = card.input
    if contract.tensor_name not in inputs:
        raise ModelCheckError(f"card input {contract.tensor_name!r} is not a graph input ({', '.join(inputs)})")
    if card.output_name not in outputs:
        raise ModelCheckError(f"card output {card.output_name!r} is not a graph output ({', '.join(outputs)})")
    expected = [contract.num_channels, contract.height, contract.width]
    shape = inputs[contract.tensor_name].shape
    if len(shape) != 4 or any(isinstance(d, int) and d != e for d, e in zip(shape[1:], expected, strict=True)):
        wanted = " x ".join(map(str, expected))
        raise ModelCheckError(f"graph input shape {shape} disagrees with the card's N x {wanted}")
    feed = {contract.tensor_name: np.zeros([1, *expected], dtype=np.float32)}
    try:
        (result,) = session.run([card.output_name], feed)
    except Exception as exc:  # any ORT runtime failure means the board would fail the same way
        raise ModelCheckError(f"a test inference failed: {exc}") from None
    if result.shape != (1, len(card.labels)):
        raise ModelCheckError(f"output shape {list(result.shape)} does not match the card's {len(card.labels)} labels")
    if not np.all(np.isfinite(result)):
        raise ModelCheckError("a test inference on a zero input gave non-finite outputs (NaN or inf)")
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
