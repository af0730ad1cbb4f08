"""Start-up reconciliation of the files under the data dir with the SQLite index.

An interrupted capture leaves a staging directory, or a sample directory whose row was never
committed: both go to ``quarantine/`` (kept, not deleted, so nothing is lost by mistake). An
interrupted delete leaves the sample in ``trash/`` with its row still present: it is put back, since
the delete was never acknowledged. Rows whose files are missing or differ in size or sha256 are
kept and reported (status, stats, the capture list) and left out of exports until someone deletes
or restores them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from rdk_agent.durable import fsync_dir
from rdk_agent.storage.files import quarantine, remove_tree
from rdk_agent.storage.index import CaptureRecord, SampleIndex
from shared_schema import sha256_file


@dataclass
class IntegrityReport:
    """What reconciliation found."""

    checked_at: str = ""
    samples: int = 0
    verified_sha256: bool = False
    missing: dict[str, str] = field(default_factory=dict)  # id -> what is missing
    mismatched: dict[str, str] = field(default_factory=dict)  # id -> what differs
    restored: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)

    def problem(self, sample_id: str) -> str | None:
        """Why a sample is unusable, or None."""
        return self.missing.get(sample_id) or self.mismatched.get(sample_id)

    def forget(self, sample_id: str) -> None:
        """Drop a sample from the report (it was deleted)."""
        self.missing.pop(sample_id, None)
        self.mismatched.pop(sample_id, None)

    def to_dict(self) -> dict:
        """JSON form for status."""
        return {
            "checked_at": self.checked_at,
            "samples": self.samples,
            "verified_sha256": self.verified_sha256,
            "missing": self.missing,
            "mismatched": self.mismatched,
            "restored": self.restored,
            "quarantined": self.quarantined,
            "ok": not self.missing and not self.mismatched,
        }


def reconcile(data_dir: Path, index: SampleIndex, verify_sha256: bool) -> IntegrityReport:
    """Bring files and index into agreement; see the module docstring."""
    folders = _Folders(data_dir)
    report = IntegrityReport(
        checked_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), verified_sha256=verify_sha256
    )
    for leftover in sorted(folders.staging.iterdir()):
        report.quarantined.append(folders.set_aside(leftover))

    records = index.all()
    report.samples = len(records)
    known = {rec.id: rec for rec in records}
    for rec in records:
        _restore_and_tidy(rec, folders, report)
        _check_files(rec, data_dir, verify_sha256, report)

    for entry in sorted(folders.samples.iterdir()):
        if entry.name not in known or not entry.is_dir():
            report.quarantined.append(folders.set_aside(entry))
    for entry in folders.trash.iterdir():
        remove_tree(entry)
    for folder in (folders.samples, folders.staging, folders.trash):
        fsync_dir(folder)
    return report


@dataclass(frozen=True)
class _Folders:
    """The folders of a data dir that reconciliation walks."""

    data: Path

    @property
    def samples(self) -> Path:
        return self.data / "samples"

    @property
    def staging(self) -> Path:
        return self.data / "staging"

    @property
    def trash(self) -> Path:
        return self.data / "trash"

    def set_aside(self, path: Path) -> str:
        """Move ``path`` to quarantine; its new path relative to the data dir."""
        return quarantine(path, self.data, self.data / "quarantine")


def _restore_and_tidy(rec: CaptureRecord, folders: _Folders, report: IntegrityReport) -> None:
    """Put back a sample whose delete was interrupted; quarantine files in its folder that it does not list."""
    sample_dir, trashed = folders.samples / rec.id, folders.trash / rec.id
    if not sample_dir.exists() and trashed.is_dir():
        os.replace(trashed, sample_dir)
        report.restored.append(rec.id)
    if not sample_dir.is_dir():
        return
    expected = {Path(f.path).name for f in rec.files()}
    for extra in sorted(sample_dir.iterdir()):
        if extra.name not in expected:
            report.quarantined.append(folders.set_aside(extra))


def _check_files(rec: CaptureRecord, data_dir: Path, verify_sha256: bool, report: IntegrityReport) -> None:
    """Report a file of ``rec`` that is missing or differs in size (or in sha256, when verifying)."""
    for ref in rec.files():
        path = data_dir / ref.path
        if not path.is_file():
            report.missing[rec.id] = f"{ref.path} is missing"
        elif path.stat().st_size != ref.bytes:
            report.mismatched[rec.id] = f"{ref.path} has {path.stat().st_size} bytes, expected {ref.bytes}"
        elif verify_sha256 and sha256_file(path) != ref.sha256:
            report.mismatched[rec.id] = f"{ref.path} does not match its sha256"
