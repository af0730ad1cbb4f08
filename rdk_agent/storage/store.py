"""CaptureStore: crash-safe capture files under the data dir, indexed in SQLite.

Layout of the data dir::

    samples/<id>/rgb.png      8-bit BGR PNG (lossless)
    samples/<id>/depth.png    16-bit PNG, millimetres, 0 = no reading (optional)
    index.sqlite3             the SQLite index (WAL)
    current_group.json        the group given to captures that name none (see groups.py)
    staging/ trash/ quarantine/ cache/thumbs/   work areas

A capture encodes in memory, checks free space against the reserve, writes its files into
``staging/<id>/`` (each fsynced), fsyncs that directory, renames it to ``samples/<id>``, fsyncs
``samples/``, and only then commits its row. A crash at any point leaves either nothing indexed
(the files are quarantined at the next start) or a complete sample. Deleting renames the sample into
``trash/`` first, then deletes the row; trash is emptied when no export is streaming, so an export
that snapshotted a sample can still send it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from rdk_agent.durable import atomic_write, fsync_dir, write_durable
from rdk_agent.storage.audit import SYSTEM, Actor, AuditEntry
from rdk_agent.storage.files import remove_tree
from rdk_agent.storage.golden import GoldenSample, signature
from rdk_agent.storage.groups import CurrentGroup, InvalidGroup, clean_group
from rdk_agent.storage.images import encode_png, thumbnail_jpeg
from rdk_agent.storage.index import CaptureRecord, SampleIndex, is_golden_group
from rdk_agent.storage.reconcile import IntegrityReport, reconcile
from shared_schema import FileRef, LabelSchema
from shared_schema.manifest import SAMPLE_ID_RE

MiB = 1024 * 1024
# Room the index needs for one more row: SQLite WAL frames of the pages an insert touches. Checked with the
# files, so that a nearly full disk refuses a capture up front instead of failing its commit half-way.
INDEX_HEADROOM = 256 * 1024


class StoreLocked(RuntimeError):
    """Another agent process uses this data dir."""


class CaptureNotFound(KeyError):
    """No capture with this id."""


class UnknownLabel(ValueError):
    """A label outside the schema."""


class InsufficientStorage(OSError):
    """The capture would fill the disk beyond the configured reserve, or the disk is full."""


def utc_iso(ts: float) -> str:
    """ISO 8601 UTC with milliseconds and a Z."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_sample_id(ts: float | None = None) -> str:
    """Sortable, unique id: UTC time to the microsecond plus 32 random bits."""
    ts = time.time() if ts is None else ts
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(4)


class CaptureStore:
    """Captures of one data dir; safe to use from many threads."""

    def __init__(self, data_dir: Path, schema: LabelSchema, reserve_bytes: int = 0, verify: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.schema = schema
        self.reserve_bytes = reserve_bytes
        self.samples_dir = self.data_dir / "samples"
        self.staging_dir = self.data_dir / "staging"
        self.trash_dir = self.data_dir / "trash"
        self.quarantine_dir = self.data_dir / "quarantine"
        self.thumbs_dir = self.data_dir / "cache" / "thumbs"
        for folder in (self.samples_dir, self.staging_dir, self.trash_dir, self.quarantine_dir, self.thumbs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock_data_dir(self.data_dir)
        try:
            self.index = SampleIndex(self.data_dir / "index.sqlite3")
        except BaseException:  # e.g. a migration that failed: leave the data dir unlocked for the next try
            os.close(self._lock_fd)
            raise
        try:
            self.dataset_id = self.index.meta_value("dataset_id", lambda: "ds-" + uuid.uuid4().hex[:16])
            self.current_group = CurrentGroup(self.data_dir)
            self.integrity: IntegrityReport = reconcile(self.data_dir, self.index, verify)
        except BaseException:
            self.close()
            raise
        self._delete_lock = threading.Lock()
        self._exports_lock = threading.Lock()
        self._exports = 0

    # -- writing -------------------------------------------------------------------------------

    def check_label(self, label: object) -> str | None:
        """``label`` if it is in the schema (or None for unlabelled); UnknownLabel otherwise."""
        if label is None:
            return None
        if not isinstance(label, str) or label not in self.schema:
            raise UnknownLabel(f"unknown label {label!r}; known labels: {', '.join(self.schema.names)}")
        return label

    def add(
        self,
        rgb: np.ndarray,
        depth: np.ndarray | None,
        label: str | None,
        source: str,
        meta: dict | None = None,
        captured_at: float | None = None,
        group: str | None = None,
    ) -> CaptureRecord:
        """Store one capture durably and index it; the record is committed when this returns.

        ``group``: None gives the capture the current group, an empty string stores it without one.
        The capture is golden when its group falls on the test side of the stable split.
        """
        label = self.check_label(label)
        group = self.current_group.get() if group is None else clean_group(group)
        if depth is not None and depth.shape[:2] != rgb.shape[:2]:
            raise ValueError(f"depth is {depth.shape[1]}x{depth.shape[0]}, image is {rgb.shape[1]}x{rgb.shape[0]}")
        ts = time.time() if captured_at is None else captured_at
        sample_id = new_sample_id()
        blobs = {"rgb.png": encode_png(rgb)}
        if depth is not None:
            blobs["depth.png"] = encode_png(depth.astype(np.uint16, copy=False))
        self._check_space(sum(len(b) for b in blobs.values()) + INDEX_HEADROOM)
        refs = {name: FileRef(f"samples/{sample_id}/{name}", _sha256(data), len(data)) for name, data in blobs.items()}
        rec = CaptureRecord(
            id=sample_id,
            label=label,
            captured_at=utc_iso(ts),
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
            source=source,
            rgb=refs["rgb.png"],
            depth=refs.get("depth.png"),
            meta=json.loads(json.dumps(meta or {}, default=_jsonable)),
            group=group,
            golden=is_golden_group(group, sample_id),
        )
        stage, final = self.staging_dir / sample_id, self.samples_dir / sample_id
        try:
            stage.mkdir()
            for name, data in blobs.items():
                write_durable(stage / name, data)
            fsync_dir(stage)
            os.rename(stage, final)
            fsync_dir(self.samples_dir)
            self.index.insert(rec)
        except BaseException as exc:
            remove_tree(stage)
            remove_tree(final)
            if _disk_full(exc):
                free = shutil.disk_usage(self.data_dir).free
                raise InsufficientStorage(
                    errno.ENOSPC,
                    f"disk full while storing the capture ({exc}): {free / MiB:.1f} MiB free; "
                    "export and delete captures or free disk space",
                ) from None
            raise
        return rec

    def _check_space(self, needed: int) -> None:
        free = shutil.disk_usage(self.data_dir).free
        if free - needed < self.reserve_bytes:
            raise InsufficientStorage(
                errno.ENOSPC,
                f"capture refused: {free / MiB:.1f} MiB free, the capture needs {needed / MiB:.1f} MiB and "
                f"{self.reserve_bytes / MiB:.1f} MiB are reserved (free_space_reserve_bytes); "
                "export and delete captures or free disk space",
            )

    def relabel(self, sample_id: str, label: str | None, actor: Actor = SYSTEM) -> CaptureRecord:
        """Change a capture's label (None puts it back in the review queue); audited for a golden capture."""
        label = self.check_label(label)
        if not self.index.set_label(self.check_id(sample_id), label, actor):
            raise CaptureNotFound(sample_id)
        return self.get(sample_id)

    def set_golden(self, sample_id: str, golden: bool, actor: Actor = SYSTEM) -> CaptureRecord:
        """Put a capture in the golden set or take it out (audited)."""
        if not self.index.set_golden(self.check_id(sample_id), golden, actor):
            raise CaptureNotFound(sample_id)
        return self.get(sample_id)

    def set_group_golden(self, group: str, golden: bool, actor: Actor = SYSTEM) -> tuple[int, int]:
        """Set the golden flag of every capture of ``group`` (audited): (captures in the group, changed)."""
        key = clean_group(group)
        if key is None:
            raise InvalidGroup("name a group: 1 to 64 printable characters")
        return self.index.set_group_golden(key, golden, actor)

    def golden_samples(self) -> list[GoldenSample]:
        """The labelled, intact golden captures whose labels are in the schema, oldest first."""
        return [
            GoldenSample(
                rec.id,
                rec.label,
                self.path_of(rec.rgb.path),
                self.path_of(rec.depth.path) if rec.depth else None,
                rec.group,
            )
            for rec in self.index.golden()
            if rec.label is not None and rec.label in self.schema and self.integrity.problem(rec.id) is None
        ]

    def golden_signature(self) -> str:
        """A digest of :meth:`golden_samples`' (id, label) pairs: changes whenever the golden set or a label does."""
        return signature(self.golden_samples())

    def golden_audit(self, sample_id: str | None = None, limit: int = 500) -> list[AuditEntry]:
        """Recorded golden-set changes, newest first: of one capture or of all."""
        return self.index.audit(sample_id, limit)

    def regroup(self, sample_id: str, group: str | None) -> CaptureRecord:
        """Change a capture's group (None or an empty string: no group)."""
        group = clean_group(group)
        if not self.index.set_group(self.check_id(sample_id), group):
            raise CaptureNotFound(sample_id)
        return self.get(sample_id)

    def delete(self, sample_id: str, actor: Actor = SYSTEM) -> None:
        """Remove a capture: files to trash, then the row; a crash in between is undone at start-up.

        Deleting a golden capture is audited.
        """
        self.check_id(sample_id)
        with self._delete_lock:
            if self.index.get(sample_id) is None:
                raise CaptureNotFound(sample_id)
            src, trashed = self.samples_dir / sample_id, self.trash_dir / sample_id
            if src.exists():
                os.replace(src, trashed)
                fsync_dir(self.samples_dir)
            try:
                self.index.delete(sample_id, actor)
            except sqlite3.OperationalError as exc:
                if not _disk_full(exc):
                    raise
                self._delete_on_full_disk(sample_id, trashed, actor)
            self.integrity.forget(sample_id)
            (self.thumbs_dir / f"{sample_id}.jpg").unlink(missing_ok=True)
        self._empty_trash_if_idle()

    def _delete_on_full_disk(self, sample_id: str, trashed: Path, actor: Actor) -> None:
        """The row delete could not be committed for lack of space: free the sample's files, then commit.

        A crash in between leaves a row whose files are missing, reported at the next start (never
        silent). While an export streams, its files must stay: the delete is undone and refused.
        """
        with self._exports_lock:
            streaming = self._exports > 0
            if not streaming:
                remove_tree(trashed)
        if streaming:
            if trashed.exists():
                os.replace(trashed, self.samples_dir / sample_id)
            raise InsufficientStorage(errno.ENOSPC, "disk full: retry the delete when the running export ends")
        try:
            self.index.delete(sample_id, actor)
        except sqlite3.OperationalError as exc:
            if not _disk_full(exc):
                raise
            self.integrity.missing[sample_id] = "files removed to free space, but the disk is too full to drop its row"
            message = f"disk full: the delete of {sample_id} cannot be recorded"
            raise InsufficientStorage(errno.ENOSPC, message) from None

    # -- reading -------------------------------------------------------------------------------

    @staticmethod
    def check_id(sample_id: str) -> str:
        """``sample_id`` if well-formed (no separators, no dots); CaptureNotFound otherwise, before any file access."""
        if not isinstance(sample_id, str) or not SAMPLE_ID_RE.match(sample_id):
            raise CaptureNotFound(sample_id)
        return sample_id

    def get(self, sample_id: str) -> CaptureRecord:
        """The capture's record; CaptureNotFound if unknown."""
        rec = self.index.get(self.check_id(sample_id))
        if rec is None:
            raise CaptureNotFound(sample_id)
        return rec

    def page(self, **filters) -> tuple[list[CaptureRecord], int]:
        """See :meth:`SampleIndex.page`."""
        return self.index.page(**filters)

    def path_of(self, relpath: str) -> Path:
        """Absolute path of a stored file; a sample deleted during an export is still read from trash."""
        path = self.data_dir / relpath
        if not path.exists() and relpath.startswith("samples/"):
            trashed = self.trash_dir / relpath[len("samples/") :]
            if trashed.exists():
                return trashed
        return path

    def file_for_sha(self, sha256: str) -> Path | None:
        """The stored file with this content hash, if any."""
        relpath = self.index.find_file(sha256)
        return self.path_of(relpath) if relpath else None

    def thumbnail(self, sample_id: str) -> Path | bytes:
        """A small JPEG of the capture: the cached file, generated on first use, or the JPEG bytes themselves
        when the disk is too full to cache it (the gallery keeps working when the operator needs it most)."""
        rec = self.get(sample_id)
        thumb = self.thumbs_dir / f"{rec.id}.jpg"
        if not thumb.exists():
            image = cv2.imread(str(self.path_of(rec.rgb.path)), cv2.IMREAD_COLOR)
            if image is None:
                raise FileNotFoundError(f"image of capture {rec.id} is unreadable")
            jpeg = thumbnail_jpeg(image)
            try:
                atomic_write(thumb, jpeg)
            except OSError as exc:
                if not _disk_full(exc):
                    raise
                return jpeg
        return thumb

    def exportable(self) -> Iterator[CaptureRecord]:
        """A consistent snapshot of the labelled, intact captures whose labels are in the schema, one at a time."""
        for rec in self.index.iter_all():
            if rec.label is not None and rec.label in self.schema and self.integrity.problem(rec.id) is None:
                yield rec

    def stats(self, target: int) -> dict:
        """Counts per label against ``target``, unlabelled count, bytes, problems, golden captures per label."""
        counts, total_bytes = self.index.counts()
        golden = self.index.golden_counts()
        golden_labels = {name: golden.get(name, 0) for name in self.schema.names}
        labels = [
            {"name": n, "count": counts.get(n, 0), "target": target, "missing": max(0, target - counts.get(n, 0))}
            for n in self.schema.names
        ]
        other = {k: v for k, v in counts.items() if k is not None and k not in self.schema}
        return {
            "target_per_class": target,
            "labels": labels,
            "labelled": sum(item["count"] for item in labels),
            "unlabelled": counts.get(None, 0),
            "outside_schema": other,
            "total": sum(counts.values()),
            "total_bytes": total_bytes,
            "problems": len(self.integrity.missing) + len(self.integrity.mismatched),
            "golden": {
                "labels": golden_labels,
                "labelled": sum(golden_labels.values()),
                "unlabelled": golden.get(None, 0),
            },
        }

    def storage_status(self) -> dict:
        """Disk use, reserve and the integrity report."""
        usage = shutil.disk_usage(self.data_dir)
        return {
            "free_bytes": usage.free,
            "reserve_bytes": self.reserve_bytes,
            "dataset_id": self.dataset_id,
            "integrity": self.integrity.to_dict(),
        }

    # -- exports -------------------------------------------------------------------------------

    def export_started(self) -> None:
        """Keep trashed files while an export streams."""
        with self._exports_lock:
            self._exports += 1

    def export_finished(self) -> None:
        """Release the hold taken by :meth:`export_started`."""
        with self._exports_lock:
            self._exports -= 1
        self._empty_trash_if_idle()

    def _empty_trash_if_idle(self) -> None:
        with self._exports_lock:
            if self._exports:
                return
            for entry in self.trash_dir.iterdir():
                remove_tree(entry)

    def close(self) -> None:
        """Close the index and release the data-dir lock."""
        self.index.close()
        os.close(self._lock_fd)


def _jsonable(value: object) -> object:
    """numpy scalars and arrays in capture metadata become plain JSON values."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"capture metadata holds a {type(value).__name__}, which is not JSON-serialisable")


def _disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _lock_data_dir(data_dir: Path) -> int:
    fd = os.open(data_dir / "agent.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreLocked(f"another agent process is using {data_dir}; stop it or choose another --data-dir") from None
    return fd
