"""An exported archive (.tar / .tar.gz with manifest.json) unpacked into the verified object cache."""

from __future__ import annotations

import tarfile
from pathlib import Path

from desktop_trainer.data.cache import ObjectCache, dataset_from_manifest, describe, refs_by_path
from desktop_trainer.data.samples import DataError, LocalDataset
from shared_schema import DatasetManifest, SchemaError

MANIFEST_NAME = "manifest.json"
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def is_archive(source: str) -> bool:
    """True for a path that names a tar archive."""
    return source.lower().endswith(ARCHIVE_SUFFIXES)


def load_archive(path: str | Path, cache: ObjectCache) -> LocalDataset:
    """Read manifest.json from the archive, store every listed file verified by sha256."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"archive {path} does not exist")
    try:
        with tarfile.open(path, "r:*") as tar:
            manifest = _read_manifest(tar, path)
            wanted = {ref.path: (s, ref) for s, ref in cache.missing(manifest)}
            by_path = refs_by_path(manifest)
            for member in tar:
                name = member.name.removeprefix("./")
                if name not in wanted or not member.isfile():
                    continue
                sample, ref = by_path[name]
                part = cache.part_path(ref)
                part.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(part, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                if not cache.commit(ref, part):
                    raise DataError(f"{path}: sample {sample.id} file {ref.path} does not match its sha256")
                del wanted[name]
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"cannot read archive {path}: {exc}") from None
    if wanted:
        raise DataError(f"{path} lacks files listed in its manifest: {describe(list(wanted.values())[:5])}")
    return dataset_from_manifest(manifest, cache, str(path))


def load_manifest_dir(root: str | Path, cache: ObjectCache) -> LocalDataset:
    """An unpacked export: a folder holding manifest.json and the files it lists."""
    root = Path(root)
    try:
        manifest = DatasetManifest.from_json((root / MANIFEST_NAME).read_bytes())
    except SchemaError as exc:
        raise DataError(f"{root / MANIFEST_NAME}: {exc}") from None
    for sample, ref in cache.missing(manifest):
        src = root / ref.path
        if not src.is_file():
            raise DataError(f"{root}: sample {sample.id} file {ref.path} is missing")
        part = cache.part_path(ref)
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(src.read_bytes())
        if not cache.commit(ref, part):
            raise DataError(f"{root}: sample {sample.id} file {ref.path} does not match its sha256")
    return dataset_from_manifest(manifest, cache, str(root))


def _read_manifest(tar: tarfile.TarFile, path: Path) -> DatasetManifest:
    for name in (MANIFEST_NAME, "./" + MANIFEST_NAME):
        try:
            member = tar.getmember(name)
        except KeyError:
            continue
        with tar.extractfile(member) as fh:
            try:
                return DatasetManifest.from_json(fh.read())
            except SchemaError as exc:
                raise DataError(f"{path}: manifest.json is invalid: {exc}") from None
    raise DataError(f"{path} has no manifest.json; is it an export from the agent?")
