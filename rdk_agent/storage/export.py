"""Dataset export: the manifest snapshot and a streamed tar / tar.gz of it.

The manifest is written one sample at a time from a single SQLite statement (a consistent snapshot)
into an anonymous temporary file in the data dir, so the agent holds no per-sample Python objects
beyond one (path, size) pair per file, and the file vanishes however the download ends. The archive
is then generated in about 1 MiB chunks (headers, file contents and padding joined), so the WSGI
server does few large writes, memory stays flat whatever the dataset size, and the first bytes leave
at once. The plain tar's exact length is known in advance and sent as Content-Length, so a client can
tell a cut download from a complete one. A file that changed size since the snapshot aborts the
stream (the client sees a short read) rather than sending an archive that disagrees with its manifest.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import socket
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import rdk_agent
from rdk_agent.storage.index import CaptureRecord
from rdk_agent.storage.store import utc_iso
from shared_schema import DatasetManifest, LabelSchema

BLOCK = 512
CHUNK = 1024 * 1024  # bytes per yielded piece (and the largest single file read)
GZIP_LEVEL = 1  # PNG payloads are already compressed; a higher level only burns the board's CPU
MANIFEST_NAME = "manifest.json"


class ExportAborted(RuntimeError):
    """A file changed or vanished while streaming."""


def build_manifest(dataset_id: str, schema: LabelSchema, records: Iterable[CaptureRecord]) -> DatasetManifest:
    """The manifest for a snapshot of labelled captures."""
    return DatasetManifest(
        dataset_id=dataset_id,
        created_at=utc_iso(time.time()),
        agent={"hostname": socket.gethostname(), "agent_version": rdk_agent.__version__},
        label_schema=schema,
        samples=tuple(rec.to_sample() for rec in records),
    )


class ManifestSnapshot:
    """``manifest.json`` written sample by sample to an anonymous temporary file, and the files it lists.

    ``records`` is called once to read the snapshot; on a full disk it is called again and the manifest
    is kept in memory instead, so an export still works when the board has no room left.
    """

    def __init__(
        self, dataset_id: str, schema: LabelSchema, records: Callable[[], Iterable[CaptureRecord]], tmp_dir: Path
    ) -> None:
        head = build_manifest(dataset_id, schema, ()).to_dict()
        del head["samples"]
        self._opening = json.dumps(head, indent=1, ensure_ascii=False)[:-2] + ',\n "samples": ['  # no closing "\n}"
        self.fh: BinaryIO = tempfile.TemporaryFile(dir=tmp_dir, prefix=".export-")  # noqa: SIM115 - see close()
        try:
            self._write(records())
        except OSError as exc:
            with contextlib.suppress(OSError):  # closing flushes what the full disk refused again
                self.fh.close()
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            self.fh = io.BytesIO()
            self._write(records())
        except BaseException:
            self.fh.close()
            raise

    def _write(self, records: Iterable[CaptureRecord]) -> None:
        self.files: list[tuple[str, int]] = []
        self.sample_count = 0
        self.fh.write(self._opening.encode())
        for rec in records:
            sample = rec.to_sample()
            sep = ",\n  " if self.sample_count else "\n  "
            self.fh.write((sep + json.dumps(sample.to_dict(), ensure_ascii=False)).encode())
            self.files.extend((f.path, f.bytes) for f in sample.files())
            self.sample_count += 1
        self.fh.write(b"\n ]\n}" if self.sample_count else b"]\n}")
        self.fh.flush()
        self.size = self.fh.tell()
        self.fh.seek(0)

    def close(self) -> None:
        """Close (and so remove) the temporary file."""
        self.fh.close()


def _header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _padding(size: int) -> int:
    return (BLOCK - size % BLOCK) % BLOCK


class TarStream:
    """Iterable tar of ``manifest.json`` then every sample file; ``close()`` runs ``on_close`` once."""

    def __init__(self, manifest: ManifestSnapshot, resolve: Callable[[str], Path], on_close: Callable[[], None]):
        self._manifest = manifest
        self._mtime = int(time.time())
        self._resolve = resolve
        self._on_close = on_close
        self._closed = False
        members = [(MANIFEST_NAME, manifest.size), *manifest.files]
        self.size = sum(len(_header(n, s, self._mtime)) + s + _padding(s) for n, s in members) + 2 * BLOCK

    def __iter__(self) -> Iterator[bytes]:
        buf = bytearray()
        for piece in self._pieces():
            buf += piece
            if len(buf) >= CHUNK:
                yield bytes(buf)
                buf.clear()
        buf += b"\0" * (2 * BLOCK)
        yield bytes(buf)

    def _pieces(self) -> Iterator[bytes]:
        """Header, contents and padding of each member, in pieces of at most CHUNK bytes."""
        yield _header(MANIFEST_NAME, self._manifest.size, self._mtime)
        yield from self._contents(MANIFEST_NAME, self._manifest.fh, self._manifest.size)
        yield b"\0" * _padding(self._manifest.size)
        for relpath, size in self._manifest.files:
            yield _header(relpath, size, self._mtime)
            try:
                fh = open(self._resolve(relpath), "rb", buffering=0)  # noqa: SIM115 - closed below, across yields
            except OSError as exc:
                raise ExportAborted(f"{relpath} vanished during the export: {exc}") from None
            with fh:
                yield from self._contents(relpath, fh, size)
            yield b"\0" * _padding(size)

    @staticmethod
    def _contents(name: str, fh: BinaryIO, size: int) -> Iterator[bytes]:
        left = size
        while left:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                raise ExportAborted(f"{name} is shorter than its manifest entry")
            left -= len(chunk)
            yield chunk
        if fh.read(1):
            raise ExportAborted(f"{name} is longer than its manifest entry")

    def close(self) -> None:
        """Remove the manifest file and release the store's hold on trashed files (the WSGI server calls this)."""
        if not self._closed:
            self._closed = True
            try:
                self._manifest.close()
            finally:
                self._on_close()


class GzipStream:
    """The gzip compression of another chunk iterable, itself streamed."""

    def __init__(self, inner: TarStream, level: int = GZIP_LEVEL) -> None:
        self._inner = inner
        self._level = level

    def __iter__(self) -> Iterator[bytes]:
        compressor = zlib.compressobj(self._level, zlib.DEFLATED, 31)
        for chunk in self._inner:
            out = compressor.compress(chunk)
            if out:
                yield out
        yield compressor.flush()

    def close(self) -> None:
        """Close the inner stream."""
        self._inner.close()
