"""Dataset manifest: exact JSON round trip (property-based), field-naming validation, versions."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_schema import DatasetManifest, FileRef, SampleRecord, SchemaError, default_weld_schema, is_safe_relpath

SCHEMA = default_weld_schema()
hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
sample_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,20}", fullmatch=True)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=20))
groups = st.text(min_size=1, max_size=64).filter(lambda g: g.isprintable() and g == g.strip())
meta = st.dictionaries(st.text(max_size=10), st.one_of(json_scalars, st.lists(json_scalars, max_size=3)), max_size=4)


@st.composite
def samples(draw, sample_id):
    def file_ref(kind):
        return FileRef(path=f"samples/{sample_id}/{kind}.png", sha256=draw(hex64), bytes=draw(st.integers(0, 2**40)))

    return SampleRecord(
        id=sample_id,
        label=draw(st.sampled_from(SCHEMA.names)),
        captured_at=draw(st.text(min_size=1, max_size=30)),
        width=draw(st.integers(1, 10_000)),
        height=draw(st.integers(1, 10_000)),
        rgb=file_ref("rgb"),
        depth=file_ref("depth") if draw(st.booleans()) else None,
        meta=draw(meta),
        group=draw(st.one_of(st.none(), groups)),
    )


@st.composite
def manifests(draw):
    ids = draw(st.lists(sample_ids, unique=True, max_size=6))
    return DatasetManifest(
        dataset_id=draw(st.text(min_size=1, max_size=20)),
        created_at="2026-11-29T00:00:00Z",
        agent={"hostname": draw(st.text(max_size=15)), "version": "0.1.0"},
        label_schema=SCHEMA,
        samples=tuple(draw(samples(i)) for i in ids),
    )


@settings(max_examples=60, deadline=None)
@given(manifests())
def test_manifest_round_trips_exactly(manifest):
    text = manifest.to_json()
    again = DatasetManifest.from_json(text)
    assert again == manifest
    assert again.to_json() == text


def _valid() -> dict:
    sha = "a" * 64
    sample = SampleRecord("s1", "porosity", "2026-11-29T00:00:00Z", 64, 48, FileRef("samples/s1/rgb.png", sha, 10))
    return DatasetManifest("d1", "2026-11-29T00:00:00Z", {"hostname": "rdk"}, SCHEMA, (sample,)).to_dict()


def _mutated(path: list, value) -> dict:
    data = copy.deepcopy(_valid())
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["samples", 0, "label"], "crack", "samples[0](id=s1).label"),
        (["samples", 0, "files", "rgb", "sha256"], "xyz", "samples[0](id=s1).files.rgb.sha256"),
        (["samples", 0, "files", "rgb", "path"], "../etc/passwd", "samples[0](id=s1).files.rgb.path"),
        (["samples", 0, "files", "rgb", "bytes"], -1, "samples[0](id=s1).files.rgb.bytes"),
        (["samples", 0, "width"], "64", "samples[0](id=s1).width"),
        (["samples", 0, "id"], "a/b", "samples[0].id"),
        (["samples", 0, "captured_at"], KeyError, "samples[0](id=s1).captured_at"),
        (["dataset_id"], KeyError, "dataset_id"),
        (["format"], "something-else", "format"),
        (["samples", 0, "group"], 17, "samples[0](id=s1).group"),
        (["samples", 0, "group"], "", "samples[0](id=s1).group"),
        (["samples", 0, "group"], "x" * 65, "samples[0](id=s1).group"),
        (["samples", 0, "group"], "weld\n7", "samples[0](id=s1).group"),
        (["samples", 0, "group"], " weld-7", "samples[0](id=s1).group"),
    ],
)
def test_validation_names_the_offending_field(path, value, field):
    with pytest.raises(SchemaError) as info:
        DatasetManifest.from_dict(_mutated(path, value))
    assert info.value.field == field


def test_group_is_optional_and_round_trips():
    old = _valid()
    assert "group" not in old["samples"][0]  # a manifest written before groups existed
    assert DatasetManifest.from_dict(old).samples[0].group is None
    grouped = _mutated(["samples", 0, "group"], "Schweißnaht 7 / Teil B")
    manifest = DatasetManifest.from_dict(grouped)
    assert manifest.samples[0].group == "Schweißnaht 7 / Teil B"
    assert manifest.to_dict()["samples"][0]["group"] == "Schweißnaht 7 / Teil B"
    assert DatasetManifest.from_dict(_mutated(["samples", 0, "group"], None)).samples[0].group is None


def test_duplicate_sample_ids_refused():
    data = _valid()
    data["samples"].append(copy.deepcopy(data["samples"][0]))
    with pytest.raises(SchemaError, match="duplicate sample id"):
        DatasetManifest.from_dict(data)


def test_unknown_major_version_refused_minor_accepted():
    with pytest.raises(SchemaError, match=r"version 2\.0 is not supported"):
        DatasetManifest.from_dict(_mutated(["format_version"], "2.0"))
    assert DatasetManifest.from_dict(_mutated(["format_version"], "1.7")).format_version == "1.7"


def test_malformed_json_is_a_schema_error():
    with pytest.raises(SchemaError, match="not valid JSON"):
        DatasetManifest.from_json(b"{")


def test_counts_include_empty_labels():
    manifest = DatasetManifest.from_dict(_valid())
    assert manifest.counts() == {"good": 0, "porosity": 1, "spatter": 0, "gap": 0, "undercut": 0}
    assert json.loads(manifest.to_json())["label_schema"]["hash"] == SCHEMA.hash


@pytest.mark.parametrize(
    ("path", "ok"),
    [("samples/a/rgb.png", True), ("/abs", False), ("a/../b", False), ("a//b", False), ("a\\b", False), ("", False)],
)
def test_safe_relpath(path, ok):
    assert is_safe_relpath(path) is ok
