"""The dataset export from an index snapshot: content, snapshot semantics, waitress's partial sends, memory, full disk.

In process against a real CaptureStore (SQLite index, files on disk), except one test through a real agent
process, where waitress sends the archive from the reader itself while captures keep arriving.
"""

from __future__ import annotations

import io
import random
import shutil
import tarfile
import threading
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import requests
from waitress.buffers import ReadOnlyFileBasedBuffer

from rdk_agent.storage import CaptureRecord, CaptureStore
from rdk_agent.storage.export import BUFFER, ExportAborted, TarReader, build_manifest, open_export, tar_header
from rdk_agent.storage.store import new_sample_id
from shared_schema import DatasetManifest, default_weld_schema, label_schema_from_names
from tests.agent_app import AUTH, api
from tests.helpers.archive import verify_archive
from tests.reliability.support import mount_tmpfs, umount

LABELS = ("good", "porosity", "spatter", "gap", "undercut")


def _frame(i: int, h: int = 24, w: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(i)
    return rng.integers(0, 255, (h, w, 3), np.uint8), rng.integers(0, 4000, (h, w), np.uint16)


def _add(store: CaptureStore, i: int, label: str | None = "good", big: bool = False) -> CaptureRecord:
    """A capture of noise (depth on odd ``i``); ``big`` ones (~100 KiB) make an archive longer than BUFFER."""
    rgb, depth = _frame(i, *((160, 200) if big else (24, 32)))
    return store.add(rgb, depth if i % 2 else None, label, "test", meta={"i": i, "note": "ünïcode"})


def _read_all(reader: TarReader, sizes: tuple[int, ...] = (1, 700, 16384, BUFFER, 3 * BUFFER)) -> bytes:
    """The whole archive, read in pieces of varying sizes (the reader may return fewer bytes)."""
    out, rng = bytearray(), random.Random(0)
    while chunk := reader.read(rng.choice(sizes)):
        out += chunk
    reader.close()
    return bytes(out)


def _contents(body: bytes) -> tuple[tuple, list[tuple[str, bytes]]]:
    """The manifest's samples and every other member's name and bytes, in order."""
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    return DatasetManifest.from_json(members[0][1]).samples, members[1:]


@pytest.fixture
def store(tmp_path):
    s = CaptureStore(tmp_path / "data", default_weld_schema())
    yield s
    s.close()


def test_export_holds_the_exportable_captures_with_verified_files(tmp_path):
    data_dir = tmp_path / "data"
    store = CaptureStore(data_dir, default_weld_schema())
    records = [_add(store, i, LABELS[i % 5]) for i in range(12)]
    _add(store, 99, None)  # unlabelled: not exported
    store.close()
    (data_dir / records[3].rgb.path).unlink()  # missing at the next start: not exported
    narrower = label_schema_from_names(list(LABELS[:4]))
    store = CaptureStore(data_dir, narrower)  # "undercut" is no longer a label: its captures stay out
    try:
        expected = [r.id for r in records if r.label != "undercut" and r.id != records[3].id]
        reader = open_export(store)
        assert reader.sample_count == len(expected)
        body = _read_all(reader)
        assert len(body) == reader.size
        manifest = verify_archive(body)  # manifest.json first, every file present with its size and sha256
        assert [s.id for s in manifest.samples] == expected
        listed = build_manifest(store.dataset_id, store.schema, store.exportable())  # GET dataset/manifest
        assert manifest.samples == listed.samples and manifest.label_schema == narrower
        assert manifest.dataset_id == store.dataset_id
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            assert all(m.mode == 0o644 and m.isfile() for m in tar.getmembers())
    finally:
        store.close()


def test_an_empty_store_exports_an_empty_manifest(store):
    _add(store, 1, None)
    body = _read_all(open_export(store))
    assert verify_archive(body).samples == ()


def test_export_is_a_snapshot_while_captures_are_added_relabelled_and_deleted(store):
    before = [_add(store, i, "good", big=True) for i in range(8)]
    reader = open_export(store)
    head = reader.read(1000)
    added = [_add(store, 100 + i, "gap") for i in range(3)]
    store.relabel(before[1].id, "porosity")
    store.delete(before[2].id)  # its files wait in trash while the export holds them
    assert any(store.trash_dir.iterdir())
    manifest = verify_archive(head + _read_all(reader))
    assert [s.id for s in manifest.samples] == [r.id for r in before]
    assert manifest.samples[1].label == "good"
    assert not any(store.trash_dir.iterdir())  # released when the archive ended
    after = verify_archive(_read_all(open_export(store)))
    assert {s.id for s in after.samples} == {r.id for r in before + added} - {before[2].id}


def test_snapshot_ignores_integrity_changes_during_the_export(tmp_path):
    """A delete forgets its integrity problem: the export must still leave that capture out, as it began."""
    data_dir = tmp_path / "data"
    store = CaptureStore(data_dir, default_weld_schema())
    records = [_add(store, i, big=True) for i in range(6)]
    store.close()
    (data_dir / records[-1].rgb.path).unlink()
    store = CaptureStore(data_dir, default_weld_schema())
    try:
        reader = open_export(store)
        head = reader.read(100)  # produces the first BUFFER bytes: the last capture is not reached yet
        store.delete(records[-1].id)
        assert [s.id for s in verify_archive(head + _read_all(reader)).samples] == [r.id for r in records[:-1]]
    finally:
        store.close()


def test_waitress_partial_sends_read_back_within_the_last_read(store):
    """waitress's file wrapper reads, seeks back, and skips only what the socket took."""
    for i in range(6):
        _add(store, i)
    expected = _read_all(open_export(store))
    reader = open_export(store)
    buf = ReadOnlyFileBasedBuffer(reader, BUFFER)
    assert buf.prepare(reader.size) == reader.size
    sent, rng = bytearray(), random.Random(1)
    while len(buf):
        chunk = buf.get(16384)
        took = rng.choice((len(chunk), len(chunk), rng.randint(1, len(chunk))))
        sent += chunk[:took]
        buf.skip(took)
    buf.close()
    assert len(sent) == len(expected)
    assert _contents(bytes(sent)) == _contents(expected)  # only the manifest's created_at may differ


def test_the_reader_cannot_go_back_further_than_its_last_refill(store):
    for i in range(6):
        _add(store, i, big=True)
    reader = open_export(store)
    assert reader.size > 2 * BUFFER
    assert len(reader.read(BUFFER)) == len(reader.read(BUFFER)) == BUFFER
    reader.seek(0)
    with pytest.raises(io.UnsupportedOperation, match="produced forward"):
        reader.read(10)
    reader.close()


def test_a_changed_file_aborts_the_archive(store):
    records = [_add(store, i) for i in range(3)]
    reader = open_export(store)
    with open(store.path_of(records[2].rgb.path), "ab") as fh:
        fh.write(b"more")
    with pytest.raises(ExportAborted, match="its manifest entry"):
        _read_all(reader)
    reader.close()


@pytest.mark.parametrize("name", ["a", "samples/x/rgb.png", "n" * 100, "n" * 101, "sämples/ü.png"])
@pytest.mark.parametrize("size", [0, 1, 512, 8**11 - 1, 8**11])
def test_tar_header_is_tarfiles_own(name, size):
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 1764558000, 0o644
    assert tar_header(name, size, 1764558000) == info.tobuf(format=tarfile.PAX_FORMAT)


def _add_copies(store: CaptureStore, template: CaptureRecord, count: int) -> None:
    """``count`` more captures with the template's files copied under new ids, indexed directly (fast)."""
    for _ in range(count):
        sample_id = new_sample_id()
        (store.samples_dir / sample_id).mkdir()
        refs = [replace(ref, path=f"samples/{sample_id}/{Path(ref.path).name}") for ref in template.files()]
        for src, dst in zip(template.files(), refs, strict=True):
            shutil.copyfile(store.path_of(src.path), store.path_of(dst.path))
        store.index.insert(replace(template, id=sample_id, rgb=refs[0], depth=refs[1]))


@pytest.mark.slow
def test_export_memory_does_not_grow_with_the_dataset(store):
    template = _add(store, 1)
    peaks = []
    for total in (1, 300, 1200):  # the first export warms up what any export builds once
        _add_copies(store, template, total - store.page(limit=1)[1])
        tracemalloc.start()
        reader = open_export(store)
        while reader.read(BUFFER):
            pass
        reader.close()
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # Holding one (path, size) per file, or the manifest, would add over 250 KiB for the 900 more captures.
    assert peaks[2] - peaks[1] < 64 * 1024, peaks


def test_on_a_full_disk_the_manifest_is_serialised_again(tmp_path):
    disk = tmp_path / "disk"
    reason = mount_tmpfs(disk, "4m")
    if reason is not None:
        pytest.skip(f"needs a small tmpfs (run as root with mount permitted): {reason}")
    try:
        store = CaptureStore(disk / "data", default_weld_schema())
        try:
            records = [_add(store, i) for i in range(40)]  # a manifest larger than one write buffer
            with open(disk / "filler", "wb") as fh, pytest.raises(OSError):
                while True:
                    fh.write(bytes(64 * 1024))
                    fh.flush()
            manifest = verify_archive(_read_all(open_export(store)))
            assert [s.id for s in manifest.samples] == [r.id for r in records]
        finally:
            store.close()
    finally:
        umount(disk)


def test_head_leaves_no_export_open(agent_app):
    agent = agent_app()
    client = agent.client
    for label in ("good", "gap"):
        assert client.post(api("captures"), json={"label": label}, headers=AUTH).status_code == 201
    full = client.get(api("dataset/export"), headers=AUTH)
    head = client.head(api("dataset/export"), headers=AUTH)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(full.data)) and not head.data
    first = client.get(api("captures"), headers=AUTH).json["items"][0]["id"]
    assert client.delete(api(f"captures/{first}"), headers=AUTH).status_code == 200
    assert not any((agent.data_dir / "trash").iterdir())  # no export holds the trash


def test_export_over_http_while_captures_arrive(agent_process):
    """Through waitress (the reader given to its file wrapper), read slowly while another client captures."""
    agent = agent_process()
    for label in LABELS * 4:
        assert requests.post(agent.api("captures"), json={"label": label}, headers=agent.auth, timeout=30).ok
    stop = threading.Event()

    def capture() -> None:
        while not stop.is_set():
            requests.post(agent.api("captures"), json={"label": "gap"}, headers=agent.auth, timeout=30)

    writer = threading.Thread(target=capture)
    with requests.get(agent.api("dataset/export"), headers=agent.auth, stream=True, timeout=60) as r:
        writer.start()
        body = bytearray()
        for chunk in r.iter_content(chunk_size=4096):  # a slow reader: waitress's sends go partial
            body += chunk
            if len(body) < 256 * 1024:
                time.sleep(0.002)
        stop.set()
        writer.join()
        assert len(body) == int(r.headers["Content-Length"])
    manifest = verify_archive(bytes(body))
    assert len(manifest.samples) == 20 == int(r.headers["X-Sample-Count"])
    later = DatasetManifest.from_dict(requests.get(agent.api("dataset/manifest"), headers=agent.auth).json())
    assert len(later.samples) > 20
