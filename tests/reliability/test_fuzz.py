"""Property-based fuzzing: the contract parsers raise SchemaError and nothing else, whatever JSON they get;
the upload endpoint answers any bytes and any fields with a 201 or a 4xx JSON error, never a 5xx.

tests/schema has round-trip properties over valid documents; here the documents are hostile: random
JSON, and valid documents with one field anywhere replaced by random JSON.
"""

from __future__ import annotations

import contextlib
import json
import random

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_schema import (
    DatasetManifest,
    FileRef,
    LabelSchema,
    ModelCard,
    SampleRecord,
    SchemaError,
    default_weld_schema,
)
from tests.helpers.onnx_models import make_card
from tests.reliability.support import Tally, all_captures, png_bytes

pytestmark = pytest.mark.reliability

SCHEMA = default_weld_schema()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _manifest_dict() -> dict:
    rgb = FileRef("samples/s1/rgb.png", "a" * 64, 10)
    sample = SampleRecord(id="s1", label="good", captured_at="2026-01-01T00:00:00Z", width=4, height=3, rgb=rgb,
                          depth=None, meta={"k": 1})  # fmt: skip
    manifest = DatasetManifest(dataset_id="ds-1", created_at="2026-01-01T00:00:00Z", agent={"version": "x"},
                               label_schema=SCHEMA, samples=(sample,))  # fmt: skip
    return json.loads(manifest.to_json())


VALID = {"manifest": _manifest_dict(), "card": json.loads(make_card().to_json()), "labels": SCHEMA.to_dict()}
PARSERS = {
    "manifest": lambda d: DatasetManifest.from_dict(d),
    "card": lambda d: ModelCard.from_dict(d),
    "labels": lambda d: LabelSchema.from_dict(d),
}


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, (*prefix, i))


def _replace(doc, path, new):
    if not path:
        return new
    doc = json.loads(json.dumps(doc))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return doc


def _parse_or_schema_error(kind: str, doc) -> None:
    try:
        PARSERS[kind](doc)
    except SchemaError as exc:
        assert exc.field is not None and str(exc)


@pytest.mark.parametrize("kind", sorted(PARSERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_documents_with_one_field_replaced_raise_only_schema_error(kind, data):
    paths = list(_paths(VALID[kind]))
    path = data.draw(st.sampled_from(paths))
    _parse_or_schema_error(kind, _replace(VALID[kind], path, data.draw(json_values)))


@settings(max_examples=150, deadline=None)
@given(text=st.one_of(st.text(max_size=200), json_values.map(json.dumps)))
def test_json_text_raises_only_schema_error(text):
    for parse in (DatasetManifest.from_json, ModelCard.from_json):
        with contextlib.suppress(SchemaError):
            parse(text)


PNG = png_bytes(64, 48, seed=3)
image_bytes = st.one_of(
    st.binary(max_size=2048),
    st.binary(max_size=512).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),
    st.integers(0, len(PNG) - 1).map(lambda n: PNG[:n]),
    st.tuples(st.integers(0, len(PNG) - 1), st.integers(0, 255)).map(
        lambda t: PNG[: t[0]] + bytes([t[1]]) + PNG[t[0] + 1 :]
    ),
)
field_names = st.sampled_from(["label", "meta", "depth", "image", "extra", "lábel", "label[]", ""])
field_values = st.one_of(st.sampled_from(SCHEMA.names), st.text(max_size=40), json_values.map(json.dumps))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    image=image_bytes,
    fields=st.dictionaries(field_names, field_values, max_size=3),
    image_field=st.sampled_from(["image", "depth", "img"]),
    route=st.sampled_from(["captures", "inspect"]),
)
def test_upload_endpoints_answer_any_input_with_201_or_a_4xx_json_error(small_agent, image, fields, image_field, route):
    before = len(all_captures(small_agent))
    files = {image_field: (f"{random.random()}.png", image)}
    data = {k: v for k, v in fields.items() if k and k not in files}
    r = requests.post(small_agent.api(route), files=files, data=data, headers=small_agent.auth, timeout=30)
    Tally.add(f"POST /api/v1/{route} (fuzzed)")
    assert r.status_code < 500, r.text[:300]
    assert r.headers["Content-Type"].startswith("application/json")
    after = len(all_captures(small_agent))
    if r.status_code in (200, 201):
        assert after - before == (1 if r.status_code == 201 else 0)
    else:
        error = r.json()["error"]
        assert error["code"] and error["message"] and "Traceback" not in r.text
        assert after == before, "a refused upload stored something"
