"""Dataset export: ``manifest.json`` then every file it lists, as a tar or tar.gz produced from one index snapshot.

Memory stays flat whatever the dataset's size. An export reads an :class:`IndexSnapshot` (one read
transaction: captures added, relabelled or deleted meanwhile are not seen, and the store keeps a deleted
sample's files in trash until the export ends) page by page, and keeps nothing per sample:

1. a first pass writes ``manifest.json`` into an anonymous temporary file in the data dir (it vanishes
   however the download ends) and sums the archive's size, sent as Content-Length so that a client can
   tell a cut download from a complete one; on a full disk the pass only measures the manifest, and the
   second pass serialises it again from the same snapshot;
2. the second pass produces the archive on demand, ``BUFFER`` bytes at a time, into one reused buffer.

:class:`TarReader` is that archive as a read-only file object, meant for the WSGI server's
``wsgi.file_wrapper``: waitress then sends straight from it. Chunks yielded by a generator are copied into
waitress's output buffer first (a BytesIO, or a temporary file from 1 MiB on) and read back out of it,
which cost about a third of the export's CPU time. :class:`GzipStream` compresses the same reader. A file
that changed since the snapshot aborts the archive (the client sees a short read) rather than sending one
that disagrees with its manifest.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import socket
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path

import rdk_agent
from rdk_agent.storage.index import CaptureRecord, IndexSnapshot
from rdk_agent.storage.store import CaptureStore, utc_iso
from shared_schema import DatasetManifest, LabelSchema, SampleRecord

BLOCK = 512
BUFFER = 256 * 1024  # bytes produced per refill of a TarReader: one system call reads a whole sample file
GZIP_LEVEL = 1  # PNG payloads are already compressed; a higher level only burns the board's CPU
MANIFEST_NAME = "manifest.json"
_USTAR_LIMIT = 8**11  # sizes and times from here on need a PAX header
_ZEROS = bytes(2 * BLOCK)

Source = io.RawIOBase | io.BufferedIOBase
Piece = bytes | tuple[str, Source, int]  # bytes, or (name, an open file, the bytes to read from it)


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


def _pax_header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT)


_TEMPLATE = _pax_header("", 0, 0)
_TEMPLATE_SUM = sum(_TEMPLATE[100:124]) + 8 * ord(" ") + sum(_TEMPLATE[156:])  # its checksum field as spaces


def _one_block(name: str, size: int, mtime: int) -> bool:
    """Whether tarfile writes this member's PAX-format header as one ustar block (no extended header)."""
    return len(name) <= 100 and name.isascii() and 0 <= size < _USTAR_LIMIT and 0 <= mtime < _USTAR_LIMIT


def tar_header(name: str, size: int, mtime: int) -> bytes:
    """The header tarfile writes for a regular file (mode 644) in PAX format.

    A name and numbers that fit one ustar block (every sample file's do) are filled into tarfile's own
    header for an empty name, with the checksum recomputed: 10x faster than ``TarInfo.tobuf``, whose
    ~25 us per header were a quarter of the export's CPU time. Anything else goes through tarfile.
    """
    if not _one_block(name, size, mtime):
        return _pax_header(name, size, mtime)
    raw = name.encode()
    numbers = b"%011o\0%011o\0" % (size, mtime)
    checksum = b"%06o\0 " % (_TEMPLATE_SUM + sum(raw) + sum(numbers))
    return raw.ljust(100, b"\0") + _TEMPLATE[100:124] + numbers + checksum + _TEMPLATE[156:]


def tar_header_size(name: str, size: int, mtime: int) -> int:
    """``len(tar_header(name, size, mtime))``, without building the header when it is one block."""
    return BLOCK if _one_block(name, size, mtime) else len(_pax_header(name, size, mtime))


def _padding(size: int) -> int:
    return (BLOCK - size % BLOCK) % BLOCK


class ManifestSnapshot:
    """``manifest.json`` of a snapshot's exportable captures, its size, and the tar size of the files it lists.

    ``keep`` picks the captures to export. The manifest is cached in an anonymous temporary file in
    ``tmp_dir``; on a full disk it is only measured, and :meth:`contents` serialises it again.
    """

    def __init__(
        self,
        dataset_id: str,
        schema: LabelSchema,
        snapshot: IndexSnapshot,
        keep: Callable[[CaptureRecord], bool],
        tmp_dir: Path,
    ) -> None:
        head = build_manifest(dataset_id, schema, ()).to_dict()
        del head["samples"]
        opening = json.dumps(head, indent=1, ensure_ascii=False)[:-2] + ',\n "samples": ['  # no closing "\n}"
        self._opening = opening.encode()
        self.mtime = int(time.time())
        self._snapshot, self._keep = snapshot, keep
        self._cache: io.BufferedRandom | None = tempfile.TemporaryFile(dir=tmp_dir, prefix=".export-")  # noqa: SIM115
        try:
            self._measure(self._cache)
        except OSError as exc:
            with contextlib.suppress(OSError):  # closing flushes what the full disk refused again
                self._cache.close()
            self._cache = None
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            self._measure(None)
        except BaseException:
            self._cache.close()
            raise

    def _records(self) -> Iterator[CaptureRecord]:
        return filter(self._keep, self._snapshot.labelled())

    def _pieces(self) -> Iterator[tuple[bytes, SampleRecord | None]]:
        """The manifest's JSON: the opening, one piece per sample (with that sample), the closing."""
        yield self._opening, None
        sep = b"\n  "
        for sample in map(CaptureRecord.to_sample, self._records()):
            yield sep + json.dumps(sample.to_dict(), ensure_ascii=False).encode(), sample
            sep = b",\n  "
        yield (b"]\n}" if sep == b"\n  " else b"\n ]\n}"), None

    def _measure(self, out: io.BufferedRandom | None) -> None:
        self.size = self.sample_count = self.files_size = 0
        for piece, sample in self._pieces():
            if out is not None:
                out.write(piece)
            self.size += len(piece)
            if sample is not None:
                self.sample_count += 1
                for ref in sample.files():
                    self.files_size += tar_header_size(ref.path, ref.bytes, self.mtime) + ref.bytes
                    self.files_size += _padding(ref.bytes)
        if out is not None:
            out.flush()

    def contents(self) -> Iterator[Piece]:
        """The manifest's bytes: its cached file, or the pieces serialised again from the snapshot."""
        if self._cache is not None:
            self._cache.seek(0)
            yield MANIFEST_NAME, self._cache, self.size
        else:
            for piece, _ in self._pieces():
                yield piece

    def files(self) -> Iterator[tuple[str, int]]:
        """``(path, bytes)`` of every file the manifest lists, in its order."""
        for rec in self._records():
            for ref in rec.files():  # rgb then depth, as in the manifest
                yield ref.path, ref.bytes

    def close(self) -> None:
        """Remove the cached manifest and end the snapshot."""
        try:
            if self._cache is not None:
                self._cache.close()
        finally:
            self._snapshot.close()


class TarReader:
    """The archive as a read-only file object: ``manifest.json`` then every file, produced as it is read.

    It moves forward only, except that it can seek back within what its last refill produced (waitress's
    file wrapper reads, seeks back, then skips as far as the socket took). The manifest snapshot is
    closed and ``on_close`` called once: when the last byte has been produced, or on ``close()``.
    """

    def __init__(
        self, manifest: ManifestSnapshot, open_file: Callable[[str], io.FileIO], on_close: Callable[[], None]
    ) -> None:
        self._manifest = manifest
        self._open_file = open_file
        self._on_close = on_close
        self.sample_count = manifest.sample_count
        self.size = tar_header_size(MANIFEST_NAME, manifest.size, manifest.mtime) + manifest.size
        self.size += _padding(manifest.size) + manifest.files_size + 2 * BLOCK
        self._pieces = self._members()
        self._view = memoryview(bytearray(BUFFER))
        self._start = self._end = self._pos = 0  # archive offsets: the buffer holds [_start, _end)
        self._pending = memoryview(b"")  # the rest of a bytes piece
        self._file: tuple[str, Source, int] | None = None  # a file being read, with the bytes left to read
        self.closed = self._released = False

    def readable(self) -> bool:
        """True."""
        return True

    def seekable(self) -> bool:
        """True, within the limits given in the class docstring."""
        return True

    def tell(self) -> int:
        """The read position."""
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move the read position (checked by the next read)."""
        self._pos = offset + {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.size}[whence]
        return self._pos

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (at most ``BUFFER``; all that is left for a negative size); empty at the end."""
        if size < 0:
            return b"".join(iter(lambda: self.read(BUFFER), b""))
        if self._pos == self._end < self.size:
            self._refill()
        if not self._start <= self._pos <= self._end:
            raise io.UnsupportedOperation(f"the archive is produced forward: cannot read at {self._pos}")
        offset = self._pos - self._start
        out = bytes(self._view[offset : min(offset + size, self._end - self._start)])
        self._pos += len(out)
        return out

    def _refill(self) -> None:
        """Produce the next ``BUFFER`` bytes of the archive (fewer at its end) into the buffer."""
        view, n = self._view, 0
        while n < len(view):
            if self._pending:
                take = min(len(self._pending), len(view) - n)
                view[n : n + take] = self._pending[:take]
                self._pending = self._pending[take:]
                n += take
            elif self._file is not None:
                name, fh, left = self._file
                got = fh.readinto(view[n : n + min(left, len(view) - n)])
                if not got:
                    raise ExportAborted(f"{name} is shorter than its manifest entry")
                n += got
                self._file = (name, fh, left - got) if left > got else None
                if self._file is None:
                    fh.close()
            else:
                piece = next(self._pieces, None)
                if piece is None:
                    self._release()
                    break
                if isinstance(piece, bytes):
                    self._pending = memoryview(piece)
                else:
                    self._file = piece
        self._start, self._end = self._end, self._end + n
        if n < len(view) and self._end != self.size:
            raise ExportAborted(f"the archive came to {self._end} bytes, {self.size} were announced")

    def _members(self) -> Generator[Piece, None, None]:
        """Header, contents and padding of each member, then the end-of-archive blocks."""
        manifest, mtime = self._manifest, self._manifest.mtime
        yield tar_header(MANIFEST_NAME, manifest.size, mtime)
        yield from manifest.contents()
        yield _ZEROS[: _padding(manifest.size)]
        for relpath, size in manifest.files():
            yield tar_header(relpath, size, mtime)
            if size:
                yield relpath, self._open_member(relpath, size), size
            yield _ZEROS[: _padding(size)]
        yield _ZEROS

    def _open_member(self, relpath: str, size: int) -> io.FileIO:
        try:
            fh = self._open_file(relpath)
        except OSError as exc:
            raise ExportAborted(f"{relpath} vanished during the export: {exc}") from None
        actual = os.fstat(fh.fileno()).st_size
        if actual != size:
            fh.close()
            raise ExportAborted(f"{relpath} has {actual} bytes, its manifest entry {size}")
        return fh

    def close(self) -> None:
        """Close the member being read, then release the snapshot if the end did not (the WSGI server calls this)."""
        self.closed = True
        if self._file is not None:
            self._file[1].close()
            self._file = None
        self._release()

    def _release(self) -> None:
        """Close the manifest snapshot, then run ``on_close``: once, at the archive's end or on close."""
        if self._released:
            return
        self._released = True
        try:
            self._pieces.close()
            self._manifest.close()
        finally:
            self._on_close()


def open_export(store: CaptureStore) -> TarReader:
    """The store's labelled, intact captures with labels in its schema, as they are now, as a tar reader.

    The store keeps deleted samples' files until the reader is closed.
    """
    problems = {*store.integrity.missing, *store.integrity.mismatched}  # fixed now: a delete forgets its entry

    def keep(rec: CaptureRecord) -> bool:
        return rec.label in store.schema and rec.id not in problems

    store.export_started()
    try:
        snapshot = store.index.snapshot()
        try:
            manifest = ManifestSnapshot(store.dataset_id, store.schema, snapshot, keep, store.data_dir)
        except BaseException:
            snapshot.close()
            raise
    except BaseException:
        store.export_finished()
        raise
    root = str(store.data_dir)

    def open_file(relpath: str) -> io.FileIO:
        """A stored file, read from trash if it was deleted since the snapshot (no pathlib: it interns each id)."""
        try:
            return open(os.path.join(root, relpath), "rb", buffering=0)
        except FileNotFoundError:
            return open(store.path_of(relpath), "rb", buffering=0)

    return TarReader(manifest, open_file, store.export_finished)


class GzipStream:
    """The gzip compression of a :class:`TarReader`, as an iterable of chunks."""

    def __init__(self, inner: TarReader, level: int = GZIP_LEVEL) -> None:
        self._inner = inner
        self._level = level

    def __iter__(self) -> Iterator[bytes]:
        compressor = zlib.compressobj(self._level, zlib.DEFLATED, 31)
        while chunk := self._inner.read(BUFFER):
            out = compressor.compress(chunk)
            if out:
                yield out
        yield compressor.flush()

    def close(self) -> None:
        """Close the inner reader."""
        self._inner.close()
