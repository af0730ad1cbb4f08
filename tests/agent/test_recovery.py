"""Restart after interrupted captures and deletes, in process (kill -9 of a real process: test_kill_recovery.py)."""

from __future__ import annotations

from tests.agent_app import AgentApp
from tests.helpers.archive import verify_archive


def _status(agent: AgentApp) -> dict:
    return agent.client.get(agent.api("status"), headers=agent.auth).json


def _all_captures(agent: AgentApp) -> dict[str, dict]:
    out, offset = {}, 0
    while offset is not None:
        page = agent.client.get(agent.api(f"captures?limit=500&offset={offset}"), headers=agent.auth).json
        out.update({c["id"]: c for c in page["items"]})
        offset = page["next_offset"]
    return out


def test_restart_reconciles_interrupted_operations(agent_app):
    agent = agent_app()
    labels = ["good", "porosity", "spatter", "gap", "undercut"]
    ids = []
    for label in labels:
        r = agent.client.post(agent.api("captures"), json={"label": label}, headers=agent.auth)
        ids.append(r.json["id"])
    agent.stop()

    data = agent.data_dir
    (data / "staging" / "20990101T000000000000Z-00000000").mkdir()  # crashed before the rename
    (data / "staging" / "20990101T000000000000Z-00000000" / "rgb.png").write_bytes(b"\x89PNG partial")
    orphan = data / "samples" / "20990101T000000000001Z-11111111"  # crashed after the rename, before the commit
    orphan.mkdir()
    (orphan / "rgb.png").write_bytes(b"\x89PNG whole but unindexed")
    (data / "samples" / ids[0] / ".rgb.png.tmp").write_bytes(b"junk")  # stray temp file in a good sample
    (data / "samples" / ids[1] / "depth.png").unlink()  # a lost file
    rgb = data / "samples" / ids[2] / "rgb.png"
    blob = bytearray(rgb.read_bytes())
    blob[-100] ^= 0xFF  # same size, different content
    rgb.write_bytes(bytes(blob))
    (data / "samples" / ids[3]).rename(data / "trash" / ids[3])  # crashed in the middle of a delete

    agent.start()
    integrity = _status(agent)["storage"]["integrity"]
    assert integrity["ok"] is False
    assert set(integrity["missing"]) == {ids[1]} and "depth.png" in integrity["missing"][ids[1]]
    assert set(integrity["mismatched"]) == {ids[2]} and "sha256" in integrity["mismatched"][ids[2]]
    assert integrity["restored"] == [ids[3]]
    assert len(integrity["quarantined"]) == 3
    assert all(path.startswith("quarantine/") for path in integrity["quarantined"])
    assert not orphan.exists() and not any((data / "staging").iterdir()) and not any((data / "trash").iterdir())
    assert sorted(p.name for p in (data / "samples" / ids[0]).iterdir()) == ["depth.png", "rgb.png"]
    assert len(list((data / "quarantine").rglob("*.png*"))) == 3

    captures = _all_captures(agent)
    assert set(captures) == set(ids)  # problems are reported, never silently dropped
    assert captures[ids[1]]["problem"] and captures[ids[2]]["problem"] and captures[ids[0]]["problem"] is None
    r = agent.client.get(agent.api(f"captures/{ids[1]}/depth"), headers=agent.auth)
    assert r.status_code == 404 and r.json["error"]["code"] == "file_missing"
    assert agent.client.get(agent.api("dataset/stats"), headers=agent.auth).json["problems"] == 2

    tar = agent.client.get(agent.api("dataset/export"), headers=agent.auth)
    assert {s.id for s in verify_archive(tar.data).samples} == {ids[0], ids[3], ids[4]}

    assert agent.client.delete(agent.api(f"captures/{ids[1]}"), headers=agent.auth).status_code == 200
    assert ids[1] not in _status(agent)["storage"]["integrity"]["missing"]
    agent.restart()
    integrity = _status(agent)["storage"]["integrity"]
    assert integrity["missing"] == {} and set(integrity["mismatched"]) == {ids[2]} and integrity["quarantined"] == []
