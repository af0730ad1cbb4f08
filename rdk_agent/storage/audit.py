"""The golden set's audit trail: who changed a golden sample's label or a capture's golden flag, when, how.

Rows go into the ``golden_audit`` table of the capture index, written by :mod:`rdk_agent.storage.index` in
the same transaction as the change they record, so a change is never committed without its record.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone

AUDIT_DDL = """
CREATE TABLE IF NOT EXISTS golden_audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sample_id TEXT NOT NULL,
    at TEXT NOT NULL,
    field TEXT NOT NULL,
    old TEXT,
    new TEXT,
    actor TEXT NOT NULL,
    remote_addr TEXT
)
"""
AUDIT_COLUMNS = "seq, sample_id, at, field, old, new, actor, remote_addr"


@dataclass(frozen=True)
class Actor:
    """Who made a change, as far as the agent knows: how they authenticated and from where."""

    name: str
    remote_addr: str | None = None


SYSTEM = Actor("agent")


@dataclass(frozen=True)
class AuditEntry:
    """One recorded change to the golden set: a golden sample's label or a capture's golden flag."""

    seq: int
    sample_id: str
    at: str
    field: str  # "label", "golden" or "deleted"
    old: str | None
    new: str | None
    actor: str
    remote_addr: str | None

    def to_dict(self) -> dict:
        """The API form."""
        return {
            "seq": self.seq,
            "sample_id": self.sample_id,
            "at": self.at,
            "field": self.field,
            "old": self.old,
            "new": self.new,
            "actor": self.actor,
            "remote_addr": self.remote_addr,
        }


def flag_text(golden: bool) -> str:
    """How a golden flag reads in an audit row."""
    return "true" if golden else "false"


def record(conn: sqlite3.Connection, sample_id: str, what: str, old: str | None, new: str | None, actor: Actor) -> None:
    """One golden_audit row, inside the caller's transaction."""
    at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    conn.execute(
        "INSERT INTO golden_audit (sample_id, at, field, old, new, actor, remote_addr) VALUES (?,?,?,?,?,?,?)",
        (sample_id, at, what, old, new, actor.name, actor.remote_addr),
    )
