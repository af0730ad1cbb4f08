"""SampleIndex: the SQLite index of captures (WAL mode, one connection per thread).

``synchronous=FULL``: in WAL mode this fsyncs the log at every commit, so a capture answered
201 survives a power cut (NORMAL could lose the last commits). Captures come a few per second at
most, so the extra fsync costs nothing that matters. Writes are serialised by a lock; reads run
concurrently from each server thread's own connection.

Schema version 2 added ``group_key`` (the part, weld or run a capture belongs to; the dataset
manifest's ``group``). An index of version 1 gains the column on open and keeps every row.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from shared_schema import FileRef, SampleRecord

SCHEMA_VERSION = 2
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
    group_key TEXT
);
CREATE INDEX IF NOT EXISTS samples_label ON samples(label, id);
CREATE INDEX IF NOT EXISTS samples_rgb_sha ON samples(rgb_sha256);
CREATE INDEX IF NOT EXISTS samples_depth_sha ON samples(depth_sha256);
CREATE TABLE IF NOT EXISTS agent_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLUMNS = (
    "id, label, captured_at, width, height, source, rgb_path, rgb_sha256, rgb_bytes, "
    "depth_path, depth_sha256, depth_bytes, meta, group_key"
)


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
            self.id, self.label, self.captured_at, self.width, self.height, self.rgb, self.depth, meta, self.group
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
            "files": files,
            "meta": self.meta,
        }


def _record(row: tuple) -> CaptureRecord:
    depth = FileRef(row[9], row[10], row[11]) if row[9] else None
    rgb = FileRef(row[6], row[7], row[8])
    return CaptureRecord(row[0], row[1], row[2], row[3], row[4], row[5], rgb, depth, json.loads(row[12]), row[13])


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring an index of an older schema version up to :data:`SCHEMA_VERSION`, rows kept, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(samples)")}
        if "group_key" not in columns:
            conn.execute("ALTER TABLE samples ADD COLUMN group_key TEXT")
        conn.execute("CREATE INDEX IF NOT EXISTS samples_group ON samples(group_key, id)")
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
            conn.executescript(_DDL)
            _migrate(conn)

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
                f"INSERT INTO samples ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    rec.id, rec.label, rec.captured_at, rec.width, rec.height, rec.source,
                    rec.rgb.path, rec.rgb.sha256, rec.rgb.bytes,
                    depth.path if depth else None, depth.sha256 if depth else None, depth.bytes if depth else None,
                    json.dumps(rec.meta, separators=(",", ":")), rec.group,
                ),
            )  # fmt: skip

    def get(self, sample_id: str) -> CaptureRecord | None:
        """The capture with ``sample_id`` or None."""
        row = self._connection().execute(f"SELECT {_COLUMNS} FROM samples WHERE id = ?", (sample_id,)).fetchone()
        return _record(row) if row else None

    def set_label(self, sample_id: str, label: str | None) -> bool:
        """Relabel; False if the id is unknown."""
        with self.transaction() as conn:
            return conn.execute("UPDATE samples SET label = ? WHERE id = ?", (label, sample_id)).rowcount == 1

    def set_group(self, sample_id: str, group: str | None) -> bool:
        """Change a capture's group (None: no group); False if the id is unknown."""
        with self.transaction() as conn:
            return conn.execute("UPDATE samples SET group_key = ? WHERE id = ?", (group, sample_id)).rowcount == 1

    def delete(self, sample_id: str) -> bool:
        """Remove a row; False if the id is unknown."""
        with self.transaction() as conn:
            return conn.execute("DELETE FROM samples WHERE id = ?", (sample_id,)).rowcount == 1

    def page(
        self,
        label: str | None = None,
        unlabelled: bool = False,
        group: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[CaptureRecord], int]:
        """Newest first; filtered by label or to unlabelled captures, and by group; with the total count."""
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
