"""The golden set in process: default marking by the stable split, the operator's per-capture and per-group
changes, their audit trail, the manifest flag in exports, stats, persistence and bad input."""

from __future__ import annotations

import io
import sqlite3
import tarfile

import pytest

from rdk_agent.storage.index import SCHEMA_VERSION
from shared_schema import DatasetManifest, FileRef, SampleRecord, SchemaError, default_weld_schema
from shared_schema.split import is_test_group
from tests.agent_app import AgentApp

TEST_SIDE = [g for g in (f"weld-{i}" for i in range(200)) if is_test_group(g)][:2]
TRAIN_SIDE = [g for g in (f"weld-{i}" for i in range(200)) if not is_test_group(g)][:2]


@pytest.fixture
def agent(agent_app) -> AgentApp:
    return agent_app()


def _capture(agent: AgentApp, label: str | None = "good", **body) -> dict:
    r = agent.client.post(agent.api("captures"), json={"label": label, **body}, headers=agent.auth)
    assert r.status_code == 201, r.text
    return r.json


def _get(agent: AgentApp, path: str, **params):
    r = agent.client.get(agent.api(path), query_string=params, headers=agent.auth)
    assert r.status_code == 200, r.text
    return r.json


def _patch(agent: AgentApp, path: str, body: dict):
    return agent.client.patch(agent.api(path), json=body, headers=agent.auth)


def _ids(agent: AgentApp, **params) -> set[str]:
    return {c["id"] for c in _get(agent, "captures", limit=500, **params)["items"]}


def _error(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json["error"]["code"] == code and r.json["error"]["message"]


def test_captures_are_golden_by_the_stable_split_and_filterable(agent):
    assert TEST_SIDE and TRAIN_SIDE
    golden = [_capture(agent, group=TEST_SIDE[0]), _capture(agent, "gap", group=TEST_SIDE[1])]
    plain = [_capture(agent, group=TRAIN_SIDE[0]), _capture(agent, "porosity", group=TRAIN_SIDE[1])]
    loose = [_capture(agent, group=None) for _ in range(12)]  # no group: the capture's own id decides
    assert all(c["golden"] for c in golden) and not any(c["golden"] for c in plain)
    assert [c["golden"] for c in loose] == [is_test_group(c["id"]) for c in loose]

    expected = {c["id"] for c in golden + loose if c["golden"]}
    assert _ids(agent, golden=1) == _ids(agent, golden="true") == expected
    assert _ids(agent, golden=0) == {c["id"] for c in golden + plain + loose} - expected
    assert _ids(agent, golden=1, label="gap") == {golden[1]["id"]}
    listed = _get(agent, "golden")
    assert listed["count"] == len(expected) and set(listed["ids"]) == expected
    assert listed["labels"]["gap"] == 1 and listed["labels"]["good"] == len(expected) - 1

    stats = _get(agent, "dataset/stats")["golden"]
    assert stats["labels"]["gap"] == 1 and stats["labels"]["porosity"] == 0
    assert stats["labelled"] == len(expected) and stats["unlabelled"] == 0
    unlabelled = _capture(agent, None, group=TEST_SIDE[0])
    assert unlabelled["golden"] and _get(agent, "dataset/stats")["golden"]["unlabelled"] == 1
    assert unlabelled["id"] not in _get(agent, "golden")["ids"]  # only labelled captures can score a model


def test_operator_sets_and_clears_golden_per_capture_with_an_audit_trail(agent):
    capture = _capture(agent, group=TRAIN_SIDE[0])
    signature = _get(agent, "golden")["signature"]
    r = _patch(agent, f"captures/{capture['id']}", {"label": "gap"})  # not golden: no audit row
    assert r.status_code == 200 and _get(agent, f"captures/{capture['id']}/history")["history"] == []
    assert _get(agent, "golden")["signature"] == signature

    r = _patch(agent, f"captures/{capture['id']}", {"golden": True})
    assert r.status_code == 200 and r.json["golden"] is True
    after_join = _get(agent, "golden")["signature"]
    assert after_join != signature
    r = _patch(agent, f"captures/{capture['id']}", {"label": "spatter"})
    assert r.status_code == 200
    assert _get(agent, "golden")["signature"] not in (signature, after_join)

    history = _get(agent, f"captures/{capture['id']}")["history"]
    assert [(h["field"], h["old"], h["new"]) for h in history] == [
        ("label", "gap", "spatter"),
        ("golden", "false", "true"),
    ]
    assert all(
        h["actor"] == "bearer token" and h["remote_addr"] == "127.0.0.1" and h["at"].endswith("Z") for h in history
    )
    assert history[0]["seq"] > history[1]["seq"]

    assert _patch(agent, f"captures/{capture['id']}", {"golden": True}).status_code == 200  # no change: no row
    r = _patch(agent, f"captures/{capture['id']}", {"golden": False})
    assert r.json["golden"] is False and r.json["label"] == "spatter"
    history = _get(agent, f"captures/{capture['id']}/history")
    assert history["golden"] is False and len(history["history"]) == 3
    assert history["history"][0]["field"] == "golden" and history["history"][0]["new"] == "false"
    assert _get(agent, "golden")["signature"] == signature


def test_operator_sets_and_clears_golden_per_group(agent):
    members = [_capture(agent, label, group=TRAIN_SIDE[0]) for label in ("good", "gap", "undercut")]
    other = _capture(agent, group=TRAIN_SIDE[1])
    r = _patch(agent, f"groups/{TRAIN_SIDE[0]}", {"golden": True})
    assert r.status_code == 200
    assert r.json == {"group": TRAIN_SIDE[0], "golden": True, "captures": 3, "changed": 3}
    assert _ids(agent, golden=1) == {c["id"] for c in members}
    assert _patch(agent, f"groups/{TRAIN_SIDE[0]}", {"golden": True}).json["changed"] == 0
    audit = _get(agent, "golden/history")["history"]
    assert sorted(h["sample_id"] for h in audit) == sorted(c["id"] for c in members)

    _patch(agent, f"captures/{members[0]['id']}", {"golden": False})
    r = _patch(agent, f"groups/{TRAIN_SIDE[0]}", {"golden": False})
    assert r.json["captures"] == 3 and r.json["changed"] == 2
    assert _ids(agent, golden=1) == set() and not _get(agent, f"captures/{other['id']}")["golden"]

    spaced = _capture(agent, group="line 3/part 7")  # spaces and slashes are valid in a group key
    r = _patch(agent, "groups/line 3/part 7", {"golden": True})
    assert r.status_code == 200 and r.json["captures"] == 1
    assert _get(agent, f"captures/{spaced['id']}")["golden"] is True
    _error(_patch(agent, "groups/no-such-group", {"golden": True}), 404, "not_found")


def test_bad_input_is_refused_and_changes_nothing(agent):
    capture = _capture(agent, group=TRAIN_SIDE[0])
    path = f"captures/{capture['id']}"
    for value in ("true", 1, None, [True]):
        _error(_patch(agent, path, {"golden": value}), 400, "bad_field")
        _error(_patch(agent, f"groups/{TRAIN_SIDE[0]}", {"golden": value}), 400, "bad_field")
    _error(_patch(agent, path, {"golden": True, "label": "nonsense"}), 400, "unknown_label")
    _error(_patch(agent, path, {"label": "gap", "golden": "yes"}), 400, "bad_field")
    _error(_patch(agent, f"groups/{TRAIN_SIDE[0]}", {}), 400, "missing_field")
    _error(_patch(agent, f"groups/{TRAIN_SIDE[0]}", {"golden": True, "label": "gap"}), 400, "unknown_field")
    _error(_patch(agent, "groups/" + "x" * 65, {"golden": True}), 400, "invalid_group")
    _error(_patch(agent, "captures/no-such-id", {"golden": True}), 404, "not_found")
    r = agent.client.get(agent.api("captures"), query_string={"golden": "maybe"}, headers=agent.auth)
    _error(r, 400, "bad_parameter")
    r = agent.client.patch(agent.api(f"groups/{TRAIN_SIDE[0]}"), json={"golden": True})
    _error(r, 401, "unauthorized")
    after = _get(agent, path)
    assert after["golden"] is False and after["label"] == "good" and after["history"] == []


def test_export_carries_the_flag_and_deleting_a_golden_sample_is_audited(agent):
    golden = _capture(agent, group=TEST_SIDE[0])
    plain = _capture(agent, "gap", group=TRAIN_SIDE[0])
    r = agent.client.get(agent.api("dataset/export"), headers=agent.auth)
    assert r.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(r.data)) as tar:
        raw = tar.extractfile("manifest.json").read()
    manifest = DatasetManifest.from_json(raw)
    assert manifest.format_version == "1.2"
    assert {s.id: s.golden for s in manifest.samples} == {golden["id"]: True, plain["id"]: False}
    served = _get(agent, "dataset/manifest")["samples"]
    assert {s["id"]: s.get("golden", False) for s in served} == {golden["id"]: True, plain["id"]: False}

    assert agent.client.delete(agent.api(f"captures/{plain['id']}"), headers=agent.auth).status_code == 200
    assert _get(agent, "golden/history")["history"] == []
    assert agent.client.delete(agent.api(f"captures/{golden['id']}"), headers=agent.auth).status_code == 200
    (entry,) = _get(agent, "golden/history")["history"]
    assert (entry["sample_id"], entry["field"], entry["old"], entry["new"]) == (golden["id"], "deleted", "good", None)


def test_flags_and_audit_survive_a_restart_and_an_old_index_is_migrated(agent):
    marked = _capture(agent, group=TRAIN_SIDE[0])
    _patch(agent, f"captures/{marked['id']}", {"golden": True})
    _patch(agent, f"captures/{marked['id']}", {"label": "gap"})
    by_split = _capture(agent, group=TEST_SIDE[0])
    cleared = _capture(agent, group=TEST_SIDE[1])
    _patch(agent, f"captures/{cleared['id']}", {"golden": False})
    signature = _get(agent, "golden")["signature"]

    agent.restart()
    assert _ids(agent, golden=1) == {marked["id"], by_split["id"]}
    assert len(_get(agent, f"captures/{marked['id']}/history")["history"]) == 2
    assert _get(agent, "golden")["signature"] == signature

    agent.stop()  # back to a schema version 2 index: no golden column, no audit table
    conn = sqlite3.connect(agent.data_dir / "index.sqlite3")
    conn.executescript(
        "DROP INDEX samples_golden; ALTER TABLE samples DROP COLUMN golden; DROP TABLE golden_audit; "
        "PRAGMA user_version = 2;"
    )
    conn.close()
    agent.start()
    assert _ids(agent, golden=1) == {by_split["id"], cleared["id"]}  # the split decides for old captures
    assert _get(agent, "golden/history")["history"] == []
    agent.stop()
    conn = sqlite3.connect(agent.data_dir / "index.sqlite3")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_manifest_golden_flag_is_optional_and_typed():
    ref = FileRef("samples/a/rgb.png", "a" * 64, 1)
    records = (SampleRecord("a", "good", "t", 4, 4, ref, golden=True), SampleRecord("b", "gap", "t", 4, 4, ref))
    data = DatasetManifest("d", "t", {}, default_weld_schema(), records).to_dict()
    assert data["samples"][0]["golden"] is True and "golden" not in data["samples"][1]
    assert [s.golden for s in DatasetManifest.from_dict(data).samples] == [True, False]
    old = dict(data, format_version="1.1", samples=[data["samples"][1]])  # written before the flag existed
    assert DatasetManifest.from_dict(old).samples[0].golden is False
    data["samples"][0]["golden"] = "yes"
    with pytest.raises(SchemaError, match=r"samples\[0\]\(id=a\)\.golden"):
        DatasetManifest.from_dict(data)


def test_a_change_and_its_audit_row_commit_together(agent):
    capture = _capture(agent, group=TEST_SIDE[0])
    conn = sqlite3.connect(agent.data_dir / "index.sqlite3")
    conn.execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON golden_audit BEGIN SELECT RAISE(ABORT, 'no'); END")
    conn.commit()
    with pytest.raises(sqlite3.IntegrityError):  # the audit row cannot be written: the relabel is undone
        agent.app.extensions["rdk"].store.relabel(capture["id"], "gap")
    assert _get(agent, f"captures/{capture['id']}")["label"] == "good"
    conn.execute("DROP TRIGGER refuse_audit")
    conn.commit()
    conn.close()
    assert _patch(agent, f"captures/{capture['id']}", {"label": "gap"}).json["label"] == "gap"
    assert len(_get(agent, f"captures/{capture['id']}")["history"]) == 1


def test_a_migration_that_fails_half_way_leaves_the_old_index_and_runs_again(agent):
    captures = [_capture(agent, group=g) for g in TEST_SIDE + TRAIN_SIDE]
    agent.stop()
    conn = sqlite3.connect(agent.data_dir / "index.sqlite3")
    conn.executescript(
        "DROP INDEX samples_golden; ALTER TABLE samples DROP COLUMN golden; DROP TABLE golden_audit; "
        "PRAGMA user_version = 2; CREATE TRIGGER stop_migration BEFORE UPDATE ON samples "
        "BEGIN SELECT RAISE(ABORT, 'power cut'); END;"
    )
    conn.close()
    with pytest.raises(sqlite3.IntegrityError):  # fails after the column was added, before the commit
        agent.start()
    agent.app = None
    conn = sqlite3.connect(agent.data_dir / "index.sqlite3")
    assert "golden" not in {row[1] for row in conn.execute("PRAGMA table_info(samples)")}
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.executescript("DROP TRIGGER stop_migration;")
    conn.close()
    agent.start()
    assert _ids(agent, golden=1) == {c["id"] for c in captures[: len(TEST_SIDE)]}
