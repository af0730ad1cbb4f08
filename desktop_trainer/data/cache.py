"""Content-addressed local store: a file lives at objects/<sha[:2]>/<sha> only once verified."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from desktop_trainer.data.samples import LocalDataset, Sample
from shared_schema import DatasetManifest, FileRef, SampleRecord, sha256_file


class ObjectCache:
    """Verified files keyed by sha256; partial downloads sit beside them as ``.part``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def path(self, ref: FileRef) -> Path:
        """Where the verified file for ``ref`` lives (the original suffix kept for readers)."""
        return self.root / "objects" / ref.sha256[:2] / (ref.sha256 + Path(ref.path).suffix.lower())

    def part_path(self, ref: FileRef) -> Path:
        """The partial download of ``ref``."""
        return self.path(ref).with_name(self.path(ref).name + ".part")

    def has(self, ref: FileRef) -> bool:
        """True when ``ref`` is stored intact; a file altered since (size or sha256) is deleted and False."""
        path = self.path(ref)
        if not path.is_file():
            return False
        if path.stat().st_size == ref.bytes and sha256_file(path) == ref.sha256:
            return True
        path.unlink()
        return False

    def commit(self, ref: FileRef, part: Path) -> bool:
        """Move a finished ``.part`` into place if its sha256 matches; delete it and return False if not."""
        if part.stat().st_size == ref.bytes and sha256_file(part) == ref.sha256:
            os.replace(part, self.path(ref))
            return True
        part.unlink()
        return False

    def missing(self, manifest: DatasetManifest) -> list[tuple[SampleRecord, FileRef]]:
        """(sample, file) pairs of the manifest not stored yet, deduplicated by sha256."""
        out, seen = [], set()
        for sample in manifest.samples:
            for ref in sample.files():
                if ref.sha256 not in seen and not self.has(ref):
                    seen.add(ref.sha256)
                    out.append((sample, ref))
        return out


def dataset_from_manifest(manifest: DatasetManifest, cache: ObjectCache, source: str) -> LocalDataset:
    """A LocalDataset whose files point into the cache (all files must be stored already)."""
    samples = tuple(
        Sample(
            id=s.id,
            label=s.label,
            rgb_path=cache.path(s.rgb),
            depth_path=cache.path(s.depth) if s.depth else None,
            meta=s.meta,
            group_key=s.group,
            golden=s.golden,
        )
        for s in manifest.samples
    )
    return LocalDataset(
        schema=manifest.label_schema, samples=samples, dataset_id=manifest.dataset_id, sources=(source,)
    )


def refs_by_path(manifest: DatasetManifest) -> dict[str, tuple[SampleRecord, FileRef]]:
    """Manifest files by their relative path."""
    return {ref.path: (s, ref) for s in manifest.samples for ref in s.files()}


def describe(items: Iterable[tuple[SampleRecord, FileRef]]) -> str:
    """Short human list of sample files, for error messages."""
    return ", ".join(f"sample {s.id} ({ref.path})" for s, ref in items)
