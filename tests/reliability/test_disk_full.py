"""Disk full: the data dir on a small tmpfs. Captures beyond the space get 507, nothing stored is damaged,
the agent keeps serving, and it recovers when space returns; the free-space reserve keeps the disk from filling.

tests/agent/test_captures.py checks the 507 of an impossible reserve on the real disk; here the disk
really fills. The tests mount tmpfs (they run as root) and skip, saying why, where mounting is refused.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from rdk_agent.launcher import AgentProcess
from tests.helpers.archive import verify_archive
from tests.reliability.support import all_captures, check_data_dir, mount_tmpfs, remount_tmpfs, umount

pytestmark = pytest.mark.reliability
MiB = 1024 * 1024


def _mounted(tmp_path: Path, options: str) -> Iterator[Path]:
    disk = tmp_path / "disk"
    reason = mount_tmpfs(disk, options)
    if reason is not None:
        pytest.skip(f"needs a tmpfs for the data dir (run as root with mount permitted): {reason}")
    yield disk
    umount(disk)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """An 8 MiB tmpfs, unmounted at the end."""
    yield from _mounted(tmp_path, "8m")


@pytest.fixture
def few_inodes_disk(tmp_path) -> Iterator[Path]:
    """A tmpfs with bytes to spare but only 48 inodes: file creation itself fails with ENOSPC."""
    yield from _mounted(tmp_path, "32m,nr_inodes=48")


def _start(disk: Path, tmp_path: Path, reserve: int) -> AgentProcess:
    agent = AgentProcess(disk / "data", tmp_path / "models", config={"free_space_reserve_bytes": reserve})
    return agent.start()


def _capture(agent, label: str = "good") -> requests.Response:
    return requests.post(agent.api("captures"), json={"label": label}, headers=agent.auth, timeout=30)


def _fill(agent, limit: int = 200) -> tuple[list[dict], requests.Response]:
    """Capture until the first refusal; the acknowledged records and the refusal."""
    stored = []
    for i in range(limit):
        r = _capture(agent, ("good", "gap", "spatter")[i % 3])
        if r.status_code != 201:
            return stored, r
        stored.append(r.json())
    raise AssertionError(f"{limit} captures fitted on the small disk")


def _still_serving(agent, stored: list[dict]) -> None:
    for path in ("status", "captures?limit=5", "dataset/stats", "dataset/manifest", "model", "labels"):
        r = requests.get(agent.api(path), headers=agent.auth, timeout=30)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
    r = requests.post(agent.api("inspect"), headers=agent.auth, timeout=30)
    assert r.status_code == 200 and r.json()["engine"] == "rules", r.text[:200]
    r = requests.get(agent.api(f"captures/{stored[0]['id']}/image"), headers=agent.auth, timeout=30)
    assert r.status_code == 200 and len(r.content) == stored[0]["files"]["rgb"]["bytes"]
    r = requests.get(agent.api(f"captures/{stored[-1]['id']}/thumbnail"), headers=agent.auth, timeout=30)
    assert r.status_code == 200 and r.content.startswith(b"\xff\xd8"), (r.status_code, r.text[:200])


def test_full_disk_refuses_with_507_keeps_data_and_recovers(small_disk, tmp_path):
    agent = _start(small_disk, tmp_path, reserve=0)
    try:
        stored, refusal = _fill(agent)
        assert len(stored) >= 2, "the disk was too small to hold even two captures"
        assert refusal.status_code == 507, (refusal.status_code, refusal.text[:300])
        error = refusal.json()["error"]
        assert error["code"] == "insufficient_storage" and "MiB free" in error["message"], error
        for _ in range(5):  # it stays refused, and each refusal cleans up after itself
            assert _capture(agent).status_code == 507
        present = all_captures(agent)
        assert set(present) == {rec["id"] for rec in stored}
        assert check_data_dir(agent.data_dir, present) == []
        filler = small_disk / "filler.bin"  # something else on the board takes the last bytes
        with open(filler, "wb") as fh, contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        assert shutil.disk_usage(small_disk).free < 65536
        _still_serving(agent, stored)
        assert {s.id for s in verify_archive(requests.get(agent.api("dataset/export"), headers=agent.auth,
                                                          timeout=60).content).samples} == set(present)  # fmt: skip

        # the operator deletes two captures: that must work on a full disk, and frees enough for one more
        for rec in stored[:2]:
            r = requests.delete(agent.api(f"captures/{rec['id']}"), headers=agent.auth, timeout=30)
            assert r.status_code == 200, r.text[:300] + agent.log()[-3000:]
        assert _capture(agent).status_code == 201

        # more space (the filler goes, a bigger card): captures flow again, after a restart too
        filler.unlink()
        remount_tmpfs(small_disk, "24m")
        for _ in range(3):
            assert _capture(agent).status_code == 201
        agent.stop()
        agent.start()
        present = all_captures(agent)
        status = requests.get(agent.api("status"), headers=agent.auth, timeout=30).json()["storage"]
        assert status["integrity"]["ok"] is True and status["integrity"]["quarantined"] == [], status
        assert check_data_dir(agent.data_dir, present) == []
        assert len(present) == len(stored) - 2 + 4
        print(f"\ndisk full: {len(stored)} captures fitted in 8 MiB, then 507 x6; recovered after delete and remount")
    finally:
        agent.stop()


def test_free_space_reserve_keeps_the_disk_from_filling(small_disk, tmp_path):
    reserve = 4 * MiB
    agent = _start(small_disk, tmp_path, reserve=reserve)
    try:
        stored, refusal = _fill(agent)
        assert refusal.status_code == 507
        error = refusal.json()["error"]
        assert error["code"] == "insufficient_storage" and "free_space_reserve_bytes" in error["message"], error
        assert "disk full" not in error["message"]  # refused by the reserve, never by the disk itself
        assert shutil.disk_usage(small_disk).free >= reserve
        present = all_captures(agent)
        assert set(present) == {rec["id"] for rec in stored} and check_data_dir(agent.data_dir, present) == []
        _still_serving(agent, stored)
        reported = requests.get(agent.api("status"), headers=agent.auth, timeout=30).json()["storage"]
        assert reported["reserve_bytes"] == reserve and reported["free_bytes"] >= reserve
    finally:
        agent.stop()


def test_enospc_while_writing_is_a_507_and_leaves_nothing_behind(few_inodes_disk, tmp_path):
    """The space check passes (bytes are free) but creating the files fails: the real ENOSPC path."""
    agent = _start(few_inodes_disk, tmp_path, reserve=0)
    try:
        stored, refusal = _fill(agent)
        assert len(stored) >= 2
        error = refusal.json()["error"]
        assert refusal.status_code == 507 and error["code"] == "insufficient_storage", refusal.text[:300]
        assert "disk full while storing the capture" in error["message"], error
        assert _capture(agent).status_code == 507
        present = all_captures(agent)
        assert set(present) == {rec["id"] for rec in stored} and check_data_dir(agent.data_dir, present) == []
        _still_serving(agent, stored)
        r = requests.delete(agent.api(f"captures/{stored[0]['id']}"), headers=agent.auth, timeout=30)
        assert r.status_code == 200, r.text[:300]
        assert _capture(agent).status_code == 201
        agent.stop()
        agent.start()
        assert check_data_dir(agent.data_dir, all_captures(agent)) == []
    finally:
        agent.stop()
