"""Durable file operations: write-fsync-rename, directory fsync, moves into quarantine."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """fsync a directory so that renames and creations inside it survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and fsync it (the caller renames the directory into place)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Remove a file or directory tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def quarantine(path: Path, data_dir: Path, quarantine_dir: Path) -> str:
    """Move ``path`` (inside ``data_dir``) under ``quarantine_dir/<stamp>/``; return its new relative path."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = quarantine_dir / stamp / path.relative_to(data_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while target.exists():
        target = target.with_name(f"{target.name}.{n}")
        n += 1
    os.replace(path, target)
    return str(target.relative_to(data_dir))
