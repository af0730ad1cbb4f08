"""Interrupted dataset downloads: the trainer's agent sync, through a loopback TCP proxy that cuts or stalls.

tests/trainer/test_train_agent.py resumes from a hand-made ``.part`` file; here the network really
fails: the proxy forwards a set number of response bytes per connection and then closes it (a
dropped link) or goes silent (a stalled one, met by the client's timeout). Re-running the sync must
resume with Range requests and end with every file verified; a damaged file in the cache must be
found by its sha256 and fetched again. Only the trainer's public functions are used.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from pathlib import Path

import pytest
import requests
from tqdm import tqdm

from desktop_trainer.data.agent import AgentClient, sync_agent
from desktop_trainer.data.cache import ObjectCache
from tests.reliability.support import sha256_file

pytestmark = pytest.mark.reliability
RANGE_RE = re.compile(rb"\r\nRange: bytes=(\d+)-", re.IGNORECASE)


class FaultyProxy:
    """Loopback TCP proxy to ``target_port``: each connection gets ``budget`` response bytes, then it is
    closed (``mode="cut"``) or left silent (``mode="stall"``). Records the Range offsets requested."""

    def __init__(self, target_port: int, budget: int, mode: str = "cut") -> None:
        self.target_port, self.budget, self.mode = target_port, budget, mode
        self.ranges: list[int] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for args in ((client, upstream, None), (upstream, client, self.budget)):
                thread = threading.Thread(target=self._pump, args=args, daemon=True)
                thread.start()
                self._threads.append(thread)

    def _pump(self, src: socket.socket, dst: socket.socket, budget: int | None) -> None:
        sent = 0
        try:
            while not self._stop.is_set():
                data = src.recv(65536)
                if not data:
                    break
                if budget is None:
                    self.ranges += [int(m) for m in RANGE_RE.findall(data)]
                else:
                    data = data[: budget - sent]
                dst.sendall(data)
                sent += len(data)
                if budget is not None and sent >= budget:
                    if self.mode == "stall":
                        self._stop.wait(30)  # silent: the client's read timeout has to notice
                    break
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@pytest.fixture
def agent_with_data(agent_process):
    """A real agent with 12 labelled captures (with depth), about 0.5 MiB each."""
    agent = agent_process()
    for i in range(12):
        label = ("good", "porosity", "spatter", "gap", "undercut")[i % 5]
        assert requests.post(agent.api("captures"), json={"label": label}, headers=agent.auth, timeout=30).ok
    return agent


def _all_verified(cache: ObjectCache, manifest) -> None:
    for sample in manifest.samples:
        for ref in sample.files():
            assert sha256_file(cache.path(ref)) == ref.sha256, ref.path
    assert not list(Path(cache.root).rglob("*.part"))


def test_sync_resumes_after_dropped_connections_and_verifies_every_file(agent_with_data, tmp_path):
    agent = agent_with_data
    manifest = AgentClient(agent.url, agent.token).manifest()
    total = sum(ref.bytes for s in manifest.samples for ref in s.files())
    proxy = FaultyProxy(agent.port, budget=700_000, mode="cut")
    cache = ObjectCache(tmp_path / "cache")
    runs, failures = 0, []
    try:
        while True:
            runs += 1
            assert runs < 60, f"no progress after {runs} runs"
            try:
                dataset = sync_agent(proxy.url, cache, token=agent.token, progress=False)
                break
            except Exception as exc:  # the trainer reports a dropped link as it sees fit; we only retry
                failures.append(type(exc).__name__)
    finally:
        proxy.close()
    assert failures, "the proxy never cut a download"
    assert any(offset > 0 for offset in proxy.ranges), "no download was resumed with a Range request"
    assert len(dataset.samples) == len(manifest.samples)
    _all_verified(cache, manifest)
    print(
        f"\ndownload: {total / 1e6:.1f} MB through a proxy cutting every connection after 0.7 MB: "
        f"{runs} runs, {len(failures)} interrupted ({sorted(set(failures))}), "
        f"{sum(1 for r in proxy.ranges if r > 0)} resumed with Range; all {len(manifest.samples)} samples verified"
    )


def test_stalled_download_times_out_keeps_its_part_and_resumes(agent_with_data, tmp_path):
    agent = agent_with_data
    manifest = AgentClient(agent.url, agent.token).manifest()
    ref = max((r for s in manifest.samples for r in s.files()), key=lambda r: r.bytes)
    cache = ObjectCache(tmp_path / "cache")
    part = cache.part_path(ref)
    part.parent.mkdir(parents=True, exist_ok=True)
    proxy = FaultyProxy(agent.port, budget=ref.bytes // 3, mode="stall")
    try:
        client = AgentClient(proxy.url, agent.token, timeout=1.0)
        with pytest.raises(requests.RequestException), tqdm(disable=True) as bar:
            client.download(ref, part, bar)
    finally:
        proxy.close()
    assert 0 < part.stat().st_size < ref.bytes, "the stalled download left no partial file"
    kept = part.stat().st_size
    proxy = FaultyProxy(agent.port, budget=10**9)
    try:
        sync_agent(proxy.url, cache, token=agent.token, progress=False)
    finally:
        proxy.close()
    assert kept in proxy.ranges, (kept, proxy.ranges)  # resumed exactly where the stall left it
    _all_verified(cache, manifest)


def test_truncated_file_in_the_cache_is_fetched_again(agent_with_data, tmp_path):
    agent = agent_with_data
    cache = ObjectCache(tmp_path / "cache")
    manifest = AgentClient(agent.url, agent.token).manifest()
    sync_agent(agent.url, cache, token=agent.token, progress=False)
    ref = manifest.samples[3].rgb
    path = cache.path(ref)
    path.write_bytes(path.read_bytes()[:-1000])
    sync_agent(agent.url, cache, token=agent.token, progress=False)
    _all_verified(cache, manifest)


def test_altered_file_in_the_cache_is_detected_by_sha256(agent_with_data, tmp_path):
    agent = agent_with_data
    cache = ObjectCache(tmp_path / "cache")
    manifest = AgentClient(agent.url, agent.token).manifest()
    sync_agent(agent.url, cache, token=agent.token, progress=False)
    ref = manifest.samples[4].rgb
    path = cache.path(ref)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # bit rot: same size, different content
    path.write_bytes(bytes(data))
    sync_agent(agent.url, cache, token=agent.token, progress=False)
    _all_verified(cache, manifest)
