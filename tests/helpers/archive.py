"""Check an exported dataset archive against its own manifest."""

from __future__ import annotations

import hashlib
import io
import tarfile

from shared_schema import DatasetManifest


def verify_archive(data: bytes, mode: str = "r:") -> DatasetManifest:
    """Open a tar (``r:``) or tar.gz (``r:gz``) export, validate its manifest, check every file.

    manifest.json must come first; every file the manifest names must be in the archive with the
    recorded size and sha256, and the archive must hold nothing else.
    """
    with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as tar:
        members = tar.getmembers()
        assert members and members[0].name == "manifest.json", [m.name for m in members[:3]]
        manifest = DatasetManifest.from_json(tar.extractfile(members[0]).read())
        contents = {m.name: tar.extractfile(m).read() for m in members[1:]}
    expected = {f.path: f for s in manifest.samples for f in s.files()}
    assert set(contents) == set(expected), set(contents) ^ set(expected)
    for path, ref in expected.items():
        assert len(contents[path]) == ref.bytes, path
        assert hashlib.sha256(contents[path]).hexdigest() == ref.sha256, path
    return manifest
