"""rdk_agent.durable.atomic_write on a real file system: content, permissions, no temp left behind."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from rdk_agent.durable import atomic_write


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_replaces_the_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "settings.json"
    atomic_write(target, b"old")
    atomic_write(target, b"new" * 100_000)
    assert target.read_bytes() == b"new" * 100_000
    assert _entries(tmp_path) == ["settings.json"]


@pytest.mark.parametrize("umask", [0o000, 0o077])
@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_mode_is_exact_whatever_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        atomic_write(tmp_path / "token", b"secret\n", mode=mode)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == mode


def test_a_failed_replace_keeps_the_old_content_and_removes_the_temp(tmp_path):
    target = tmp_path / "index.json"
    target.mkdir()  # os.replace of a file over a directory fails
    (target / "kept").write_text("x")
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    assert (target / "kept").read_text() == "x"
    assert _entries(tmp_path) == ["index.json"]


def test_concurrent_writers_leave_one_whole_version(tmp_path):
    target = tmp_path / "current_group.json"
    versions = [bytes([65 + i]) * 50_000 for i in range(8)]
    threads = [threading.Thread(target=atomic_write, args=(target, data)) for data in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert target.read_bytes() in versions
    assert _entries(tmp_path) == ["current_group.json"]
