"""The one model-card reader: card_from_metadata on metadata maps, read_model_card on real ONNX files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shared_schema import (
    METADATA_KEY,
    ModelCardError,
    SchemaError,
    card_from_metadata,
    default_weld_schema,
    read_model_card,
)
from tests.helpers import onnx_models as om

CARD = om.make_card()


def test_card_from_metadata_round_trips_the_card() -> None:
    metadata = {"producer": "x", METADATA_KEY: CARD.to_json()}
    assert card_from_metadata(metadata, "m.onnx") == CARD


def test_missing_card_names_the_model_the_key_and_the_fix() -> None:
    with pytest.raises(ModelCardError) as err:
        card_from_metadata({"other": "{}"}, "m.onnx")
    assert err.value.missing
    assert str(err.value) == (
        "m.onnx has no model card (ONNX metadata key 'rdk.model_card'); "
        "export the model with desktop_trainer, which embeds the card"
    )


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("{not json", "model card is not valid JSON"),
        ("[1, 2]", "model card must be a JSON object"),
        (json.dumps({**CARD.to_dict(), "labels": ["only"]}), "labels: a model needs at least two output labels"),
        (json.dumps({**CARD.to_dict(), "input": {"width": 32}}), "input.height: missing required field"),
    ],
)
def test_invalid_card_names_the_model_the_field_and_the_fix(text: str, detail: str) -> None:
    with pytest.raises(ModelCardError) as err:
        card_from_metadata({METADATA_KEY: text}, "m.onnx")
    assert not err.value.missing and isinstance(err.value, SchemaError)
    message = str(err.value)
    assert message.startswith("m.onnx: the model card is invalid: ") and detail in message
    assert message.endswith("; re-export the model with desktop_trainer")


def test_unsupported_card_version_says_to_update_the_reader() -> None:
    text = json.dumps({**CARD.to_dict(), "card_version": "2.0"})
    with pytest.raises(ModelCardError, match=r"version 2.0 is not supported; update the agent$"):
        card_from_metadata({METADATA_KEY: text}, "m.onnx")


def test_read_model_card_reads_an_onnx_file(tmp_path) -> None:
    schema = default_weld_schema()
    card = read_model_card(om.write_valid(tmp_path / "model.onnx", schema))
    assert card == om.make_card(schema)
    assert card.label_schema_hash == schema.hash


@pytest.mark.parametrize(
    ("writer", "error", "message"),
    [
        (om.write_no_card, ModelCardError, "model.onnx has no model card"),
        (om.write_invalid_card, ModelCardError, "model.onnx: the model card is invalid: "),
        (om.write_truncated, ValueError, "ONNX Runtime cannot load "),
        (om.write_random_bytes, ValueError, "ONNX Runtime cannot load "),
    ],
)
def test_read_model_card_refuses_unfit_files(tmp_path, writer, error, message) -> None:
    path = writer(tmp_path / "model.onnx")
    with pytest.raises(error) as err:
        read_model_card(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_read_model_card_of_a_missing_file_is_a_value_error(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"ONNX Runtime cannot load .*absent\.onnx"):
        read_model_card(tmp_path / "absent.onnx")


def test_importing_shared_schema_does_not_load_onnxruntime() -> None:
    code = "import sys, shared_schema; sys.exit('onnxruntime' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
