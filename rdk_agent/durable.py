"""Durable file writes: the one atomic replace of a file, and the fsyncs it is made of.

:func:`atomic_write` is used for every file the agent and the board's deploy scripts replace in
place: the token, the current group, thumbnails, the kept-models index, a rolled-back model, and the
board's settings file (``deploy/board`` imports this module with the system Python, so it uses the
standard library only).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """fsync a directory so that renames and creations inside it survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_durable(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist) with ``data`` and fsync it; the caller renames it into place."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that a crash or a power cut leaves either the old or the new file.

    Writes a temp file in the same directory with permissions ``mode`` (whatever the umask), fsyncs
    it, renames it over ``path`` and fsyncs the directory, so that the rename is on disk when this
    returns. On an error (a full disk) the temp file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            os.fchmod(fd, mode)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
