"""Capture groups: validation, and the station's current group that sticks to the following captures.

A group names the part, weld or batch a capture shows (the dataset manifest's ``group``); the
trainer keeps a group's captures in one split. The operator sets the current group once on the page
and every capture that does not name its own group gets it. It is kept in
``<data-dir>/current_group.json``, replaced atomically (temp file, fsync, rename, directory fsync),
so a restart or a power cut leaves the old or the new value.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from rdk_agent.durable import atomic_write
from shared_schema import SchemaError
from shared_schema.manifest import check_group

log = logging.getLogger(__name__)

CURRENT_GROUP_FILE = "current_group.json"


class InvalidGroup(ValueError):
    """A group that is not a short string of printable characters."""


def clean_group(value: object) -> str | None:
    """``value`` with surrounding spaces removed, or None for null or an empty string; InvalidGroup otherwise."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidGroup(f"group must be a string or null, got {type(value).__name__}")
    value = value.strip()
    if not value:
        return None
    try:
        return check_group(value, "group")
    except SchemaError as exc:
        raise InvalidGroup(str(exc)) from None


class CurrentGroup:
    """The group applied to captures that name none; persisted in the data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / CURRENT_GROUP_FILE
        self._lock = threading.Lock()
        self._value = self._load()

    def _load(self) -> str | None:
        try:
            return clean_group(json.loads(self.path.read_text(encoding="utf-8")).get("group"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, AttributeError) as exc:  # unreadable or hand-edited: start without one
            log.warning("ignoring %s (%s): no current group", self.path, exc)
            return None

    def get(self) -> str | None:
        """The current group, or None."""
        return self._value

    def set(self, value: object) -> str | None:
        """Validate (see :func:`clean_group`), persist and return the new current group."""
        group = clean_group(value)
        data = json.dumps({"group": group}, ensure_ascii=False).encode("utf-8")
        with self._lock:
            atomic_write(self.path, data)
            self._value = group
        return group
