"""Capture groups in process: a capture's own group, the current group that sticks, the filter, the manifest,
and a data dir whose index predates groups."""

from __future__ import annotations

import json
import sqlite3

import cv2
import numpy as np
import pytest

from rdk_agent.storage.index import SCHEMA_VERSION
from tests.agent_app import AgentApp, multipart


@pytest.fixture
def agent(agent_app) -> AgentApp:
    return agent_app()


def _capture(agent: AgentApp, **body) -> dict:
    r = agent.client.post(agent.api("captures"), json={"label": "good", **body}, headers=agent.auth)
    assert r.status_code == 201, r.text
    return r.json


def _upload(agent: AgentApp, **fields) -> dict:
    png = cv2.imencode(".png", np.full((48, 64, 3), 90, np.uint8))[1].tobytes()
    body = multipart({"image": ("a.png", png, "image/png")}, **{"label": "gap", **fields})
    r = agent.client.post(agent.api("captures"), data=body, headers=agent.auth)
    assert r.status_code == 201, r.text
    return r.json


def _set_current(agent: AgentApp, group):
    return agent.client.put(agent.api("current-group"), json={"group": group}, headers=agent.auth)


def _current(agent: AgentApp) -> dict:
    return agent.client.get(agent.api("current-group"), headers=agent.auth).json


def _listed(agent: AgentApp, **params) -> list[str]:
    r = agent.client.get(agent.api("captures"), query_string={"limit": 500, **params}, headers=agent.auth)
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json["items"]]


def _manifest_groups(agent: AgentApp) -> dict[str, str | None]:
    r = agent.client.get(agent.api("dataset/manifest"), headers=agent.auth)
    return {s["id"]: s.get("group") for s in r.json["samples"]}


def test_capture_group_patch_filter_and_manifest(agent):
    client = agent.client
    own = _capture(agent, group="weld-A7")
    assert own["group"] == "weld-A7"
    upload = _upload(agent, group="  weld-A7 ")  # surrounding spaces are dropped
    assert upload["group"] == "weld-A7"
    plain = _capture(agent)
    assert plain["group"] is None  # no current group set yet
    assert client.get(agent.api(f"captures/{own['id']}"), headers=agent.auth).json["group"] == "weld-A7"

    assert set(_listed(agent, group="weld-A7")) == {own["id"], upload["id"]}
    assert _listed(agent, group="weld-A7", label="gap") == [upload["id"]]
    assert _listed(agent, group="nothing-here") == []

    r = client.patch(agent.api(f"captures/{plain['id']}"), json={"group": "weld-B1"}, headers=agent.auth)
    assert r.status_code == 200 and r.json["group"] == "weld-B1" and r.json["label"] == "good"
    assert _listed(agent, group="weld-B1") == [plain["id"]]
    r = client.patch(agent.api(f"captures/{upload['id']}"), json={"label": "good", "group": None}, headers=agent.auth)
    assert r.status_code == 200 and r.json["group"] is None and r.json["label"] == "good"

    groups = _manifest_groups(agent)
    assert groups[own["id"]] == "weld-A7" and groups[plain["id"]] == "weld-B1" and groups[upload["id"]] is None


def test_bad_groups_are_refused_with_json_errors_and_change_nothing(agent):
    client = agent.client
    target = _capture(agent)["id"]
    before = _listed(agent)
    for bad in ("x" * 65, "tab\there", 17, ["a"]):
        r = client.post(agent.api("captures"), json={"label": "good", "group": bad}, headers=agent.auth)
        assert r.status_code == 400 and r.json["error"]["code"] == "invalid_group", (bad, r.text)
        r = _set_current(agent, bad)
        assert r.status_code == 400 and r.json["error"]["code"] == "invalid_group", (bad, r.text)
    r = client.put(agent.api("current-group"), json={}, headers=agent.auth)
    assert r.status_code == 400 and r.json["error"]["code"] == "missing_field"
    r = client.put(agent.api("current-group"), data="weld", headers=agent.auth)
    assert r.status_code == 415
    r = client.get(agent.api("captures"), query_string={"group": "x" * 65}, headers=agent.auth)
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_group"
    r = client.patch(agent.api(f"captures/{target}"), json={}, headers=agent.auth)
    assert r.status_code == 400 and r.json["error"]["code"] == "missing_field"
    r = client.patch(agent.api(f"captures/{target}"), json={"label": "gap", "group": "\x00"}, headers=agent.auth)
    assert r.status_code == 400  # the bad group refuses the label change too
    assert client.get(agent.api(f"captures/{target}"), headers=agent.auth).json["label"] != "gap"
    assert _listed(agent) == before
    assert _current(agent) == {"group": None}


def test_current_group_sticks_to_following_captures_and_survives_a_restart(agent):
    assert agent.client.put(agent.api("current-group"), json={"group": "part 12"}).status_code == 401
    assert _current(agent) == {"group": None}

    r = _set_current(agent, "part 12")
    assert r.status_code == 200 and r.json == {"group": "part 12"}
    following = [_capture(agent), _capture(agent, label="porosity"), _upload(agent)]
    assert [c["group"] for c in following] == ["part 12"] * 3
    assert _capture(agent, group="part 99")["group"] == "part 99"  # a capture naming its own group keeps it
    assert _capture(agent, group=None)["group"] is None  # null: explicitly no group
    assert _upload(agent, group="")["group"] is None
    assert set(_listed(agent, group="part 12")) == {c["id"] for c in following}

    agent.restart()
    assert _current(agent) == {"group": "part 12"}
    assert _capture(agent)["group"] == "part 12"
    assert json.loads((agent.data_dir / "current_group.json").read_text()) == {"group": "part 12"}

    assert _set_current(agent, None).json == {"group": None}
    assert _capture(agent)["group"] is None
    assert _set_current(agent, "part 13").json == {"group": "part 13"}
    assert _set_current(agent, "").json == {"group": None}


def test_an_index_from_before_groups_migrates_and_keeps_its_rows(agent):
    old = [_capture(agent, label=label) for label in ("good", "gap", "spatter")]
    agent.stop()
    # Turn the index back into the schema version 1 layout: no group_key column, no group index.
    conn = sqlite3.connect(agent.data_dir / "index.sqlite3")
    conn.executescript("DROP INDEX samples_group; ALTER TABLE samples DROP COLUMN group_key; PRAGMA user_version = 1;")
    conn.close()
    conn = sqlite3.connect(agent.data_dir / "index.sqlite3")
    assert "group_key" not in {row[1] for row in conn.execute("PRAGMA table_info(samples)")}
    conn.close()

    agent.start()
    listed = agent.client.get(agent.api("captures"), headers=agent.auth).json
    assert listed["total"] == 3 and {c["id"] for c in listed["items"]} == {c["id"] for c in old}
    assert all(c["group"] is None and c["problem"] is None for c in listed["items"])
    assert set(_manifest_groups(agent)) == {c["id"] for c in old}
    new = _capture(agent, group="run-5")
    r = agent.client.patch(agent.api(f"captures/{old[0]['id']}"), json={"group": "run-5"}, headers=agent.auth)
    assert r.status_code == 200
    assert set(_listed(agent, group="run-5")) == {new["id"], old[0]["id"]}
    agent.stop()
    conn = sqlite3.connect(agent.data_dir / "index.sqlite3")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 4
    conn.close()
