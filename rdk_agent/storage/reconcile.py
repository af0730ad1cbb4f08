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
from rdk_agent.storage.index import SampleIndex
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
    samples_dir, staging_dir = data_dir / "samples", data_dir / "staging"
    trash_dir, quarantine_dir = data_dir / "trash", data_dir / "quarantine"
    report = IntegrityReport(
        checked_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), verified_sha256=verify_sha256
    )
    for leftover in sorted(staging_dir.iterdir()):
        report.quarantined.append(quarantine(leftover, data_dir, quarantine_dir))

    records = index.all()
    report.samples = len(records)
    known = {rec.id: rec for rec in records}
    for rec in records:
        sample_dir = samples_dir / rec.id
        if not sample_dir.exists() and (trash_dir / rec.id).is_dir():
            os.replace(trash_dir / rec.id, sample_dir)
            report.restored.append(rec.id)
        expected = {Path(f.path).name for f in rec.files()}
        if sample_dir.is_dir():
            for extra in sorted(sample_dir.iterdir()):
                if extra.name not in expected:
                    report.quarantined.append(quarantine(extra, data_dir, quarantine_dir))
        for ref in rec.files():
            path = data_dir / ref.path
            if not path.is_file():
                report.missing[rec.id] = f"{ref.path} is missing"
            elif path.stat().st_size != ref.bytes:
                report.mismatched[rec.id] = f"{ref.path} has {path.stat().st_size} bytes, expected {ref.bytes}"
            elif verify_sha256 and sha256_file(path) != ref.sha256:
                report.mismatched[rec.id] = f"{ref.path} does not match its sha256"

    for entry in sorted(samples_dir.iterdir()):
        if entry.name not in known or not entry.is_dir():
            report.quarantined.append(quarantine(entry, data_dir, quarantine_dir))
    for entry in trash_dir.iterdir():
        remove_tree(entry)
    for folder in (samples_dir, staging_dir, trash_dir):
        fsync_dir(folder)
    return report
