"""Load: 8 concurrent clients capture, upload, inspect, list and export against one real agent process.

25 s by default (60 s with RDK_RELIABILITY_FULL=1, or RDK_LOAD_SECONDS=N), loopback only, every request
with a timeout. Checks: zero 5xx, every acknowledged capture present with its sha256, every export
consistent with its own manifest, the final export equal to the index. Prints throughput and
p50/p99 latency per operation and writes them to bench/out/reliability_load.json.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict

import pytest
import requests

from tests.helpers.archive import verify_archive
from tests.reliability.support import FULL, all_captures, check_data_dir, percentile, png_bytes, write_report

pytestmark = pytest.mark.reliability

SECONDS = float(os.environ.get("RDK_LOAD_SECONDS", 60 if FULL else 25))
CLIENTS = 8
LABELS = ("good", "porosity", "spatter", "gap", "undercut")


class Recorder:
    """Latencies and statuses per operation, from all client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.bad: list[str] = []
        self.acknowledged: dict[str, dict] = {}
        self.exported: list[int] = []

    def call(self, op: str, method: str, url: str, expect: int = 200, **kwargs) -> requests.Response | None:
        started = time.perf_counter()
        try:
            r = requests.request(method, url, timeout=60, **kwargs)
        except requests.RequestException as exc:
            with self.lock:
                self.bad.append(f"{op}: {exc}")
            return None
        elapsed = time.perf_counter() - started
        with self.lock:
            self.latency[op].append(elapsed)
            if r.status_code != expect:
                self.bad.append(f"{op}: {r.status_code} {r.text[:200]}")
        return r if r.status_code == expect else None


def _client(agent, role: int, rec: Recorder, deadline: float) -> None:
    auth, n = agent.auth, 0
    upload = png_bytes(320, 240, seed=role)
    while time.monotonic() < deadline:
        n += 1
        label = LABELS[(role + n) % len(LABELS)]
        if role < 2:  # camera captures
            r = rec.call("capture", "POST", agent.api("captures"), 201, json={"label": label}, headers=auth)
        elif role == 2:  # uploads
            r = rec.call("upload", "POST", agent.api("captures"), 201, headers=auth,
                         files={"image": ("u.png", upload)}, data={"label": label})  # fmt: skip
        elif role in (3, 4):
            if n % 2:
                r = rec.call("inspect", "POST", agent.api("inspect"), headers=auth)
            else:
                r = rec.call("inspect_upload", "POST", agent.api("inspect"), headers=auth,
                             files={"image": ("u.png", upload)})  # fmt: skip
        elif role in (5, 6):
            r = rec.call("list", "GET", agent.api(f"captures?limit=50&offset={(n % 4) * 50}"), headers=auth)
            if n % 5 == 0:
                rec.call("stats", "GET", agent.api("dataset/stats"), headers=auth)
                rec.call("manifest", "GET", agent.api("dataset/manifest"), headers=auth)
        else:
            r = rec.call("export", "GET", agent.api("dataset/export?format=" + ("tar", "tar.gz")[n % 2]),
                         headers=auth)  # fmt: skip
            if r is not None:
                manifest = verify_archive(r.content, "r:" if n % 2 == 0 else "r:gz")
                with rec.lock:
                    rec.exported.append(len(manifest.samples))
        if r is not None and r.status_code == 201:
            with rec.lock:
                rec.acknowledged[r.json()["id"]] = r.json()


def test_eight_clients_capture_inspect_list_and_export(agent_process):
    agent = agent_process()
    for label in LABELS:  # something to list and export from the first second
        assert requests.post(agent.api("captures"), json={"label": label}, headers=agent.auth, timeout=30).ok
    rec = Recorder()
    deadline = time.monotonic() + SECONDS
    started = time.monotonic()
    clients = [threading.Thread(target=_client, args=(agent, role, rec, deadline)) for role in range(CLIENTS)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=SECONDS + 120)
    wall = time.monotonic() - started
    assert not any(c.is_alive() for c in clients)

    assert rec.bad == [], rec.bad[:10]
    present = all_captures(agent)
    assert set(rec.acknowledged) <= set(present), "an acknowledged capture is missing"
    assert all(present[cid]["files"] == r["files"] for cid, r in rec.acknowledged.items())
    assert check_data_dir(agent.data_dir, present) == []
    final = verify_archive(requests.get(agent.api("dataset/export"), headers=agent.auth, timeout=120).content)
    assert {s.id for s in final.samples} == set(present)
    assert rec.exported and len(rec.latency["inspect"]) > 0

    report = {"seconds": round(wall, 1), "clients": CLIENTS, "captures_acknowledged": len(rec.acknowledged),
              "captures_present": len(present), "exports": len(rec.exported), "operations": {}}  # fmt: skip
    for op, values in sorted(rec.latency.items()):
        report["operations"][op] = {"count": len(values), "per_s": round(len(values) / wall, 2),
                                    "p50_ms": round(percentile(values, 50) * 1000, 1),
                                    "p99_ms": round(percentile(values, 99) * 1000, 1)}  # fmt: skip
    path = write_report("reliability_load", report)
    lines = [f"{op:15s} {v['count']:5d} ({v['per_s']:6.2f}/s)  p50 {v['p50_ms']:8.1f} ms  p99 {v['p99_ms']:8.1f} ms"
             for op, v in report["operations"].items()]  # fmt: skip
    print(f"\nload: {CLIENTS} clients for {wall:.1f} s, 0 errors, {len(rec.acknowledged)} captures acknowledged, "
          f"{len(present)} present, {len(rec.exported)} exports verified ({path})")  # fmt: skip
    print("  " + "\n  ".join(lines))
