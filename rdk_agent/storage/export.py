"""Dataset export: the manifest snapshot and a streamed tar / tar.gz of it.

The archive is generated chunk by chunk (a tar header, then the file in 256 KiB reads, then
padding), so memory stays flat whatever the dataset size and the first bytes leave at once. The
plain tar's exact length is known in advance and sent as Content-Length, so a client can tell a cut
download from a complete one. A file that changed size since the snapshot aborts the stream (the
client sees a short read) rather than sending an archive that disagrees with its manifest.
"""

from __future__ import annotations

import socket
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import rdk_agent
from rdk_agent.storage.index import CaptureRecord
from rdk_agent.storage.store import utc_iso
from shared_schema import DatasetManifest, LabelSchema

BLOCK = 512
READ_CHUNK = 256 * 1024
GZIP_LEVEL = 1  # PNG payloads are already compressed; a higher level only burns the board's CPU


class ExportAborted(RuntimeError):
    """A file changed or vanished while streaming."""


def build_manifest(dataset_id: str, schema: LabelSchema, records: list[CaptureRecord]) -> DatasetManifest:
    """The manifest for a snapshot of labelled captures."""
    return DatasetManifest(
        dataset_id=dataset_id,
        created_at=utc_iso(time.time()),
        agent={"hostname": socket.gethostname(), "agent_version": rdk_agent.__version__},
        label_schema=schema,
        samples=tuple(rec.to_sample() for rec in records),
    )


@dataclass(frozen=True)
class _Member:
    name: str
    size: int
    data: bytes | None = None  # in-memory member (the manifest)
    relpath: str | None = None  # stored file


def _header(member: _Member, mtime: int) -> bytes:
    info = tarfile.TarInfo(member.name)
    info.size = member.size
    info.mtime = mtime
    info.mode = 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _padding(size: int) -> int:
    return (BLOCK - size % BLOCK) % BLOCK


class TarStream:
    """Iterable tar of ``manifest.json`` then every sample file; ``close()`` runs ``on_close`` once."""

    def __init__(self, manifest: DatasetManifest, resolve: Callable[[str], Path], on_close: Callable[[], None]):
        manifest_bytes = manifest.to_json(indent=1).encode("utf-8")
        self._mtime = int(time.time())
        self._members = [_Member("manifest.json", len(manifest_bytes), data=manifest_bytes)]
        for sample in manifest.samples:
            self._members.extend(_Member(f.path, f.bytes, relpath=f.path) for f in sample.files())
        self._resolve = resolve
        self._on_close = on_close
        self._closed = False

    @property
    def size(self) -> int:
        """Exact archive length in bytes."""
        total = sum(len(_header(m, self._mtime)) + m.size + _padding(m.size) for m in self._members)
        return total + 2 * BLOCK

    def __iter__(self) -> Iterator[bytes]:
        for member in self._members:
            yield _header(member, self._mtime)
            if member.data is not None:
                yield member.data
            else:
                yield from self._file_chunks(member)
            if _padding(member.size):
                yield b"\0" * _padding(member.size)
        yield b"\0" * (2 * BLOCK)

    def _file_chunks(self, member: _Member) -> Iterator[bytes]:
        path = self._resolve(member.relpath)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below, across yields
        except OSError as exc:
            raise ExportAborted(f"{member.relpath} vanished during the export: {exc}") from None
        with fh:
            left = member.size
            while left:
                chunk = fh.read(min(READ_CHUNK, left))
                if not chunk:
                    raise ExportAborted(f"{member.relpath} is shorter than its manifest entry")
                left -= len(chunk)
                yield chunk
            if fh.read(1):
                raise ExportAborted(f"{member.relpath} is longer than its manifest entry")

    def close(self) -> None:
        """Release the store's hold on trashed files (called by the WSGI server when the response ends)."""
        if not self._closed:
            self._closed = True
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
