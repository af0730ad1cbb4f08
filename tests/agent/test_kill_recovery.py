"""kill -9 of a real agent process during a capture storm: no acknowledged capture is lost."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.helpers.archive import verify_archive

pytestmark = pytest.mark.server


def _status(agent) -> dict:
    return requests.get(agent.api("status"), headers=agent.auth, timeout=10).json()


def _all_captures(agent) -> dict[str, dict]:
    out, offset = {}, 0
    while offset is not None:
        page = requests.get(agent.api(f"captures?limit=500&offset={offset}"), headers=agent.auth, timeout=10).json()
        out.update({c["id"]: c for c in page["items"]})
        offset = page["next_offset"]
    return out


def test_kill_9_during_capture_storm_loses_no_acknowledged_capture(agent_process):
    agent = agent_process()
    acknowledged: list[str] = []
    for round_no in range(2):
        stop = threading.Event()

        def storm(label: str, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                try:
                    r = requests.post(agent.api("captures"), json={"label": label}, headers=agent.auth, timeout=10)
                except requests.RequestException:
                    return
                if r.status_code == 201:
                    acknowledged.append(r.json()["id"])

        workers = [threading.Thread(target=storm, args=(label,)) for label in ("good", "gap")]
        for worker in workers:
            worker.start()
        time.sleep(1.0 + 0.37 * round_no)
        agent.kill()
        stop.set()
        for worker in workers:
            worker.join(timeout=15)
        agent.start()
        integrity = _status(agent)["storage"]["integrity"]
        assert integrity["missing"] == {} and integrity["mismatched"] == {}, integrity
        present = _all_captures(agent)
        assert set(acknowledged) <= set(present)
        assert not any((agent.data_dir / "staging").iterdir())
        assert {p.name for p in (agent.data_dir / "samples").iterdir()} == set(present)
    assert len(acknowledged) > 4
    tar = requests.get(agent.api("dataset/export"), headers=agent.auth, timeout=60)
    assert {s.id for s in verify_archive(tar.content).samples} == set(_all_captures(agent))
