"""Power cut: kill -9 a real agent at random moments of a capture, upload and delete storm, five times.

tests/agent/test_recovery.py covers hand-made crash leftovers and two kills of a capture storm; this
test repeats the cut, mixes uploads and deletes into the storm, and checks the data dir itself after
each restart: every indexed sample has its files with the recorded sha256, nothing lies outside the
index except in quarantine, no 201 is ever lost and no acknowledged delete comes back.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
import requests

from tests.helpers.archive import verify_archive
from tests.reliability.support import FULL, all_captures, check_data_dir, png_bytes

pytestmark = pytest.mark.reliability

KILLS = 10 if FULL else 5
SEED = 20240611


class Storm:
    """Capture, upload and delete clients hammering one agent until it dies."""

    def __init__(self, agent) -> None:
        self.agent = agent
        self.lock = threading.Lock()
        self.acknowledged: dict[str, dict] = {}  # id -> record from the 201
        self.deleted: set[str] = set()  # deletes answered 200
        self.in_flight_captures = 0  # requests cut by the kill: may or may not be stored
        self.uncertain_deletes: set[str] = set()
        self.late: set[str] = set()  # cut in flight, found stored after the restart
        self.unexpected: list[str] = []

    def _capture(self, worker: int, round_no: int) -> bool:
        label = ("good", "porosity", "spatter", "gap", "undercut")[worker % 5]
        try:
            if worker % 2:
                files = {"image": ("u.png", png_bytes(96, 64, seed=round_no * 1000 + worker))}
                r = requests.post(self.agent.api("captures"), files=files, data={"label": label},
                                  headers=self.agent.auth, timeout=10)  # fmt: skip
            else:
                r = requests.post(self.agent.api("captures"), json={"label": label}, headers=self.agent.auth,
                                  timeout=10)  # fmt: skip
        except requests.RequestException:
            with self.lock:
                self.in_flight_captures += 1
            return False
        with self.lock:
            if r.status_code == 201:
                self.acknowledged[r.json()["id"]] = r.json()
            else:
                self.unexpected.append(f"capture answered {r.status_code}: {r.text[:200]}")
        return True

    def _delete(self, rng: random.Random) -> bool:
        with self.lock:
            candidates = sorted(set(self.acknowledged) - self.deleted - self.uncertain_deletes)
        if len(candidates) < 4:
            time.sleep(0.02)
            return True
        victim = rng.choice(candidates)
        with self.lock:
            self.uncertain_deletes.add(victim)
        try:
            r = requests.delete(self.agent.api(f"captures/{victim}"), headers=self.agent.auth, timeout=10)
        except requests.RequestException:
            return False  # stays uncertain: the kill came while it ran
        with self.lock:
            self.uncertain_deletes.discard(victim)
            if r.status_code == 200:
                self.deleted.add(victim)
            else:
                self.unexpected.append(f"delete answered {r.status_code}: {r.text[:200]}")
        return True

    def run(self, round_no: int, rng: random.Random, stop: threading.Event) -> list[threading.Thread]:
        """Start three capture/upload workers and one deleter."""

        def capture_loop(worker: int) -> None:
            while not stop.is_set() and self._capture(worker, round_no):
                pass

        def delete_loop(seed: int) -> None:
            local = random.Random(seed)
            while not stop.is_set() and self._delete(local):
                time.sleep(0.05)

        threads = [threading.Thread(target=capture_loop, args=(w,)) for w in range(3)]
        threads.append(threading.Thread(target=delete_loop, args=(rng.random(),)))
        for thread in threads:
            thread.start()
        return threads


def test_repeated_kill_9_during_captures_uploads_and_deletes(agent_process):
    rng = random.Random(SEED)
    agent = agent_process()
    storm = Storm(agent)
    survived = 0
    for round_no in range(KILLS):
        stop = threading.Event()
        threads = storm.run(round_no, rng, stop)
        time.sleep(rng.uniform(0.4, 1.6))
        agent.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
        assert not any(t.is_alive() for t in threads)
        agent.start()
        survived += 1

        integrity = requests.get(agent.api("status"), headers=agent.auth, timeout=30).json()["storage"]["integrity"]
        assert integrity["missing"] == {} and integrity["mismatched"] == {}, integrity
        assert all(path.startswith("quarantine/") for path in integrity["quarantined"]), integrity
        present = all_captures(agent)
        assert check_data_dir(agent.data_dir, present) == []
        expected = (set(storm.acknowledged) | storm.late) - storm.deleted
        assert expected - storm.uncertain_deletes <= set(present), "an acknowledged capture was lost"
        assert not (storm.deleted & set(present)), "an acknowledged delete came back"
        extra = set(present) - expected
        assert len(extra) <= storm.in_flight_captures, (extra, storm.in_flight_captures)
        for cid in set(storm.acknowledged) & set(present):
            assert present[cid]["files"] == storm.acknowledged[cid]["files"], cid
        storm.deleted |= expected - set(present)  # cut deletes that did land
        storm.uncertain_deletes.clear()
        storm.late |= extra  # cut captures that did land: from now on they must stay

    assert storm.unexpected == []
    assert len(storm.acknowledged) >= 5 * KILLS, len(storm.acknowledged)
    present = all_captures(agent)
    tar = requests.get(agent.api("dataset/export"), headers=agent.auth, timeout=60)
    assert {s.id for s in verify_archive(tar.content).samples} == set(present)
    assert set(present) == (set(storm.acknowledged) | storm.late) - storm.deleted
    print(f"\npower cut: {survived} kill -9 survived; {len(storm.acknowledged)} captures acknowledged (201), "
          f"{len(storm.deleted)} deleted, {len(present)} present; {storm.in_flight_captures} captures cut in "
          f"flight, of which {len(storm.late)} were stored")  # fmt: skip
