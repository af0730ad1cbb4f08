"""Label schema: defaults, validation errors that name the field, hashing, file loading."""

from __future__ import annotations

import json

import pytest

from shared_schema import LabelSchema, SchemaError, default_weld_schema, label_schema_from_names, load_label_schema


def test_default_weld_schema_order_keys_and_defect_flags():
    schema = default_weld_schema()
    assert schema.names == ["good", "porosity", "spatter", "gap", "undercut"]
    assert [label.key for label in schema.labels] == ["1", "2", "3", "4", "5"]
    assert [label.is_defect for label in schema.labels] == [False, True, True, True, True]


def test_hash_binds_names_in_order_only():
    schema = default_weld_schema()
    recoloured = LabelSchema.from_dict({**schema.to_dict(), "hash": None, "name": "other", "version": 7})
    assert recoloured.hash == schema.hash
    reordered = label_schema_from_names(["good", "spatter", "porosity", "gap", "undercut"])
    assert reordered.hash != schema.hash


def test_round_trip_through_json():
    schema = default_weld_schema()
    again = LabelSchema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert again == schema
    assert again.labels == schema.labels


@pytest.mark.parametrize(
    ("labels", "field", "fragment"),
    [
        (["good"], "labels", "at least two"),
        (["good", "good"], "labels[1].name", "duplicate"),
        (["good", "Bad Name"], "labels[1].name", "not a valid label name"),
        ([{"name": "good", "key": "1"}, {"name": "crack", "key": "1"}], "labels[1].key", "bound twice"),
        ([{"name": "good", "key": "12"}, "crack"], "labels[0].key", "one printable"),
        ([{"name": "good", "colour": "red"}, "crack"], "labels[0].colour", "#rrggbb"),
        ([{"name": "good", "is_defect": "no"}, "crack"], "labels[0].is_defect", "expected bool"),
    ],
)
def test_invalid_schemas_name_the_field(labels, field, fragment):
    with pytest.raises(SchemaError) as info:
        LabelSchema.from_dict({"name": "station", "labels": labels}, where="")
    assert info.value.field == field
    assert fragment in info.value.message


def test_stated_hash_must_match():
    data = default_weld_schema().to_dict()
    data["hash"] = "0" * 64
    with pytest.raises(SchemaError, match="does not match"):
        LabelSchema.from_dict(data)


def test_unknown_label_lookup_lists_known_labels():
    with pytest.raises(KeyError, match="known labels: good, porosity"):
        default_weld_schema().index("crack")


def test_load_json_and_yaml(tmp_path):
    station = {"name": "castings", "labels": [{"name": "ok", "is_defect": False, "key": "q"}, "crack", "shrinkage"]}
    json_path = tmp_path / "labels.json"
    json_path.write_text(json.dumps(station))
    yaml_path = tmp_path / "labels.yaml"
    yaml_path.write_text(
        "name: castings\nlabels:\n  - {name: ok, is_defect: false, key: q}\n  - crack\n  - shrinkage\n"
    )
    from_json, from_yaml = load_label_schema(json_path), load_label_schema(yaml_path)
    assert from_json == from_yaml
    assert from_json.names == ["ok", "crack", "shrinkage"]
    assert from_json.get("ok").is_defect is False


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(SchemaError, match="cannot read label schema"):
        load_label_schema(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SchemaError, match="not valid JSON"):
        load_label_schema(broken)
