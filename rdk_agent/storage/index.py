"""SampleIndex: the SQLite index of captures (WAL mode, one connection per thread).

``synchronous=FULL``: in WAL mode this fsyncs the log at every commit, so a capture answered
201 survives a power cut (NORMAL could lose the last commits). Captures come a few per second at
most, so the extra fsync costs nothing that matters. Writes are serialised by a lock; reads run
concurrently from each server thread's own connection.

Schema version 2 added ``group_key`` (the part, weld or run a capture belongs to; the dataset
manifest's ``group``). Version 3 added ``golden`` (the capture belongs to the frozen evaluation set)
and the ``golden_audit`` table (who changed a golden sample's label or a capture's golden flag, when,
from what to what). An older index gains the columns and tables on open, in one transaction, and
keeps every row; its captures are marked golden by the stable group split (:func:`is_golden_group`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rdk_agent.storage.audit import AUDIT_COLUMNS, AUDIT_DDL, SYSTEM, Actor, AuditEntry, flag_text, record
from shared_schema import FileRef, SampleRecord
from shared_schema.split import is_test_group

SCHEMA_VERSION = 3
_DDL = """
CREATE TABLE IF NOT EXISTS samples (
    id TEXT PRIMARY KEY,
    label TEXT,
    captured_at TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    source TEXT NOT NULL,
    rgb_path TEXT NOT NULL,
    rgb_sha256 TEXT NOT NULL,
    rgb_bytes INTEGER NOT NULL,
    depth_path TEXT,
    depth_sha256 TEXT,
    depth_bytes INTEGER,
    meta TEXT NOT NULL DEFAULT '{}',
    group_key TEXT,
    golden INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS samples_label ON samples(label, id);
CREATE INDEX IF NOT EXISTS samples_rgb_sha ON samples(rgb_sha256);
CREATE INDEX IF NOT EXISTS samples_depth_sha ON samples(depth_sha256);
CREATE TABLE IF NOT EXISTS agent_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLUMNS = (
    "id, label, captured_at, width, height, source, rgb_path, rgb_sha256, rgb_bytes, "
    "depth_path, depth_sha256, depth_bytes, meta, group_key, golden"
)


def is_golden_group(group: str | None, sample_id: str) -> bool:
    """The default golden flag: the capture's group (its own id when it has none) is on the split's test side."""
    return is_test_group(group if group else sample_id)


@dataclass(frozen=True)
class CaptureRecord:
    """One indexed capture; ``label`` None means unlabelled (the review queue), ``group`` None means no group."""

    id: str
    label: str | None
    captured_at: str
    width: int
    height: int
    source: str
    rgb: FileRef
    depth: FileRef | None = None
    meta: dict = field(default_factory=dict)
    group: str | None = None
    golden: bool = False

    def files(self) -> list[FileRef]:
        """rgb then depth."""
        return [self.rgb] + ([self.depth] if self.depth else [])

    @property
    def total_bytes(self) -> int:
        """Bytes of all files."""
        return sum(f.bytes for f in self.files())

    def to_sample(self) -> SampleRecord:
        """The manifest record (labelled captures only)."""
        if self.label is None:
            raise ValueError(f"capture {self.id} is unlabelled")
        meta = dict(self.meta, source=self.source)
        return SampleRecord(
            self.id,
            self.label,
            self.captured_at,
            self.width,
            self.height,
            self.rgb,
            self.depth,
            meta,
            self.group,
            self.golden,
        )

    def to_dict(self) -> dict:
        """The API form."""
        files = {"rgb": self.rgb.to_dict()}
        if self.depth:
            files["depth"] = self.depth.to_dict()
        return {
            "id": self.id,
            "label": self.label,
            "captured_at": self.captured_at,
            "width": self.width,
            "height": self.height,
            "source": self.source,
            "group": self.group,
            "golden": self.golden,
            "files": files,
            "meta": self.meta,
        }


def _record(row: tuple) -> CaptureRecord:
    depth = FileRef(row[9], row[10], row[11]) if row[9] else None
    rgb = FileRef(row[6], row[7], row[8])
    return CaptureRecord(
        row[0], row[1], row[2], row[3], row[4], row[5], rgb, depth, json.loads(row[12]), row[13], bool(row[14])
    )


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring an index of an older schema version up to :data:`SCHEMA_VERSION`, rows kept, in one transaction.

    A crash part-way rolls the whole step back (SQLite's journal), so the next open starts it again.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(samples)")}
        if "group_key" not in columns:
            conn.execute("ALTER TABLE samples ADD COLUMN group_key TEXT")
        if "golden" not in columns:
            conn.execute("ALTER TABLE samples ADD COLUMN golden INTEGER NOT NULL DEFAULT 0")
            rows = conn.execute("SELECT id, group_key FROM samples").fetchall()
            golden = [(sample_id,) for sample_id, group in rows if is_golden_group(group, sample_id)]
            conn.executemany("UPDATE samples SET golden = 1 WHERE id = ?", golden)
        conn.execute("CREATE INDEX IF NOT EXISTS samples_group ON samples(group_key, id)")
        conn.execute("CREATE INDEX IF NOT EXISTS samples_golden ON samples(golden, id)")
        conn.execute(AUDIT_DDL)
        conn.execute("CREATE INDEX IF NOT EXISTS golden_audit_sample ON golden_audit(sample_id, seq)")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class IndexSnapshot:
    """The index as it stood when this was opened: one read transaction on a connection of its own.

    WAL mode lets captures, relabels and deletes go on meanwhile, unseen here, until :meth:`close`.
    Rows are read in pages by key, so a reader holds one page at a time whatever the index's size.
    Usable from any one thread at a time.
    """

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            self._conn.execute("PRAGMA query_only=ON")
            self._conn.execute("PRAGMA cache_size=-256")  # KiB: read once in key order, a page's worth is enough
            self._conn.execute("BEGIN")
            self._conn.execute("SELECT 1 FROM samples LIMIT 1").fetchall()  # the first read fixes the snapshot
        except BaseException:
            self._conn.close()
            raise

    def labelled(self, page_rows: int = 256) -> Iterator[CaptureRecord]:
        """Every labelled capture, oldest first, read ``page_rows`` rows at a time."""
        last = ""
        while True:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM samples WHERE label IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
                (last, page_rows),
            ).fetchall()
            yield from map(_record, rows)
            if len(rows) < page_rows:
                return
            last = rows[-1][0]

    def close(self) -> None:
        """End the read transaction (the WAL can be checkpointed past it again)."""
        self._conn.close()


class SampleIndex:
    """Thread-safe access to ``index.sqlite3``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        with self._write_lock:
            conn = self._connection()
            try:
                conn.executescript(_DDL)
                _migrate(conn)
            except BaseException:
                self.close()
                raise

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A serialised write transaction, committed on success."""
        with self._write_lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def insert(self, rec: CaptureRecord) -> None:
        """Add a capture row (committed and durable on return)."""
        depth = rec.depth
        with self.transaction() as conn:
            conn.execute(
                f"INSERT INTO samples ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    rec.id, rec.label, rec.captured_at, rec.width, rec.height, rec.source,
                    rec.rgb.path, rec.rgb.sha256, rec.rgb.bytes,
                    depth.path if depth else None, depth.sha256 if depth else None, depth.bytes if depth else None,
                    json.dumps(rec.meta, separators=(",", ":")), rec.group, int(rec.golden),
                ),
            )  # fmt: skip

    def get(self, sample_id: str) -> CaptureRecord | None:
        """The capture with ``sample_id`` or None."""
        row = self._connection().execute(f"SELECT {_COLUMNS} FROM samples WHERE id = ?", (sample_id,)).fetchone()
        return _record(row) if row else None

    def set_label(self, sample_id: str, label: str | None, actor: Actor = SYSTEM) -> bool:
        """Relabel; False if the id is unknown. A golden capture's change is audited in the same transaction."""
        with self.transaction() as conn:
            row = conn.execute("SELECT label, golden FROM samples WHERE id = ?", (sample_id,)).fetchone()
            if row is None:
                return False
            conn.execute("UPDATE samples SET label = ? WHERE id = ?", (label, sample_id))
            if row[1] and row[0] != label:
                record(conn, sample_id, "label", row[0], label, actor)
            return True

    def set_group(self, sample_id: str, group: str | None) -> bool:
        """Change a capture's group (None: no group); False if the id is unknown. The golden flag stays."""
        with self.transaction() as conn:
            return conn.execute("UPDATE samples SET group_key = ? WHERE id = ?", (group, sample_id)).rowcount == 1

    def set_golden(self, sample_id: str, golden: bool, actor: Actor = SYSTEM) -> bool:
        """Put a capture in the golden set or take it out (audited when it changes); False if the id is unknown."""
        with self.transaction() as conn:
            row = conn.execute("SELECT golden FROM samples WHERE id = ?", (sample_id,)).fetchone()
            if row is None:
                return False
            if bool(row[0]) != golden:
                conn.execute("UPDATE samples SET golden = ? WHERE id = ?", (int(golden), sample_id))
                record(conn, sample_id, "golden", flag_text(bool(row[0])), flag_text(golden), actor)
            return True

    def set_group_golden(self, group: str, golden: bool, actor: Actor = SYSTEM) -> tuple[int, int]:
        """Set the golden flag of every capture of ``group``, audited per capture: (captures, changed)."""
        with self.transaction() as conn:
            rows = conn.execute("SELECT id, golden FROM samples WHERE group_key = ?", (group,)).fetchall()
            changed = [sample_id for sample_id, flag in rows if bool(flag) != golden]
            conn.executemany("UPDATE samples SET golden = ? WHERE id = ?", [(int(golden), i) for i in changed])
            for sample_id in changed:
                record(conn, sample_id, "golden", flag_text(not golden), flag_text(golden), actor)
            return len(rows), len(changed)

    def delete(self, sample_id: str, actor: Actor = SYSTEM) -> bool:
        """Remove a row; False if the id is unknown. Deleting a golden capture is audited."""
        with self.transaction() as conn:
            row = conn.execute("SELECT label, golden FROM samples WHERE id = ?", (sample_id,)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM samples WHERE id = ?", (sample_id,))
            if row[1]:
                record(conn, sample_id, "deleted", row[0], None, actor)
            return True

    def audit(self, sample_id: str | None = None, limit: int = 500) -> list[AuditEntry]:
        """Golden-set changes, newest first: of one capture, or of all."""
        where, args = ("WHERE sample_id = ?", (sample_id,)) if sample_id is not None else ("", ())
        rows = self._connection().execute(
            f"SELECT {AUDIT_COLUMNS} FROM golden_audit {where} ORDER BY seq DESC LIMIT ?", (*args, limit)
        )
        return [AuditEntry(*row) for row in rows]

    def golden(self) -> list[CaptureRecord]:
        """The labelled golden captures, oldest first, read in one statement."""
        rows = (
            self._connection()
            .execute(f"SELECT {_COLUMNS} FROM samples WHERE golden = 1 AND label IS NOT NULL ORDER BY id")
            .fetchall()
        )
        return [_record(r) for r in rows]

    def golden_counts(self) -> dict[str | None, int]:
        """Golden captures per label (None = unlabelled)."""
        rows = self._connection().execute("SELECT label, COUNT(*) FROM samples WHERE golden = 1 GROUP BY label")
        return dict(rows.fetchall())

    def page(
        self,
        label: str | None = None,
        unlabelled: bool = False,
        group: str | None = None,
        golden: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[CaptureRecord], int]:
        """Newest first; filtered by label or to unlabelled captures, by group and golden flag; with the total."""
        conditions: list[str] = []
        args: tuple = ()
        if unlabelled:
            conditions.append("label IS NULL")
        elif label is not None:
            conditions.append("label = ?")
            args += (label,)
        if group is not None:
            conditions.append("group_key = ?")
            args += (group,)
        if golden is not None:
            conditions.append("golden = ?")
            args += (int(golden),)
        where = "WHERE " + " AND ".join(conditions) if conditions else ""
        conn = self._connection()
        total = conn.execute(f"SELECT COUNT(*) FROM samples {where}", args).fetchone()[0]
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM samples {where} ORDER BY id DESC LIMIT ? OFFSET ?", (*args, limit, offset)
        ).fetchall()
        return [_record(r) for r in rows], total

    def all(self) -> list[CaptureRecord]:
        """Every capture, oldest first, read in one statement (a consistent snapshot)."""
        rows = self._connection().execute(f"SELECT {_COLUMNS} FROM samples ORDER BY id").fetchall()
        return [_record(r) for r in rows]

    def iter_all(self) -> Iterator[CaptureRecord]:
        """Every capture, oldest first, one at a time from one statement (a consistent snapshot while it runs)."""
        for row in self._connection().execute(f"SELECT {_COLUMNS} FROM samples ORDER BY id"):
            yield _record(row)

    def snapshot(self) -> IndexSnapshot:
        """A consistent view of the index for a long read (an export); close it when done."""
        return IndexSnapshot(self.path)

    def counts(self) -> tuple[dict[str | None, int], int]:
        """Captures per label (None = unlabelled) and total bytes."""
        conn = self._connection()
        rows = conn.execute("SELECT label, COUNT(*) FROM samples GROUP BY label").fetchall()
        total = conn.execute("SELECT COALESCE(SUM(rgb_bytes + COALESCE(depth_bytes, 0)), 0) FROM samples").fetchone()
        return dict(rows), total[0]

    def find_file(self, sha256: str) -> str | None:
        """Relative path of a stored file with this sha256."""
        conn = self._connection()
        row = conn.execute("SELECT rgb_path FROM samples WHERE rgb_sha256 = ? LIMIT 1", (sha256,)).fetchone()
        if row is None:
            row = conn.execute("SELECT depth_path FROM samples WHERE depth_sha256 = ? LIMIT 1", (sha256,)).fetchone()
        return row[0] if row else None

    def meta_value(self, key: str, default_factory) -> str:
        """A persistent agent setting, created with ``default_factory()`` the first time."""
        with self.transaction() as conn:
            row = conn.execute("SELECT value FROM agent_meta WHERE key = ?", (key,)).fetchone()
            if row:
                return row[0]
            value = default_factory()
            conn.execute("INSERT INTO agent_meta (key, value) VALUES (?, ?)", (key, value))
            return value

    def close(self) -> None:
        """Close every thread's connection."""
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
