"""Data-dir file operations: removing trees, moves into quarantine (durable writes: ``rdk_agent.durable``)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path


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
