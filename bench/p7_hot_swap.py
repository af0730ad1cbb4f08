"""P7: failed requests during a model hot swap under 8 concurrent inspect clients, and swap-to-active time.

    .venv/bin/python bench/p7_hot_swap.py [--quick] [--swaps 3] [--clients 8] [--out FILE]

A real agent (loopback only) serves the default model (bench/models.py) with its default inspection
settings except confidence and review thresholds of 0 (the untrained model then decides and no review
captures are stored) and ``promotion: immediate``. Since the model registry (issue 12), a model that
arrives becomes a challenger and serves only after golden-set scoring and ``shadow_frames`` frames in
shadow (``promotion: auto``), so rename-to-active would time the promotion cycle (and the shadow frames
the clients' own requests supply), not the hot swap; ``immediate`` keeps the registry (every version is
still kept and scored) but swaps in each model that passes the card checks at once, which is the swap
P7 is meant to load. The settings reach the agent as its config file's ``inspection`` section.

Eight client threads POST the same JPEG frame to ``/api/v1/inspect`` without pause. Each swap writes the other
model (same network, different card, so a different sha256) to a temporary file in the models dir and renames
it onto ``model.onnx``, as rsync does; swap-to-active is the time from that rename until ``GET /api/v1/model``
reports the new sha256 (polled every 50 ms). Bounded: at most ``--swaps`` swaps, each waited for at most 60 s,
plus 1 s of traffic after the last. Goal: 0 failed requests (any non-200 answer or connection error); answers
that fell back to the rules are counted apart.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from bench.common import emit, figure, log, parser
from bench.models import default_weld_model, variant
from bench.p1_agent_overhead import encoded_frame, served_sha256, start_agent

# promotion "immediate": the hot swap itself, not the champion/challenger cycle (see the docstring)
SETTINGS = {"confidence_threshold": 0.0, "review_threshold": 0.0, "promotion": "immediate"}
MAX_REQUESTS_PER_CLIENT = 5000


class Clients:
    """``n`` threads posting the frame until stopped; counts answers by outcome and model."""

    def __init__(self, agent, data: bytes, n: int) -> None:
        self.agent, self.data = agent, data
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = self.failed = self.fallback = 0
        self.errors: list[str] = []
        self.by_model: dict[str, int] = {}
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]

    def _run(self) -> None:
        session = requests.Session()
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if self.stop.is_set():
                return
            try:
                r = session.post(
                    self.agent.api("inspect"),
                    files={"image": ("f.jpg", self.data)},
                    headers=self.agent.auth,
                    timeout=30,
                )
                body = r.json() if r.status_code == 200 else None
            except (requests.RequestException, ValueError) as exc:
                r, body = None, None
                error = type(exc).__name__
            with self.lock:
                if body is None:
                    self.failed += 1
                    self.errors.append(f"HTTP {r.status_code}: {r.text[:200]}" if r is not None else error)
                    continue
                self.ok += 1
                self.fallback += body["engine"] != "onnx"
                sha = (body.get("model") or {}).get("sha256", "none")[:12]
                self.by_model[sha] = self.by_model.get(sha, 0) + 1

    def __enter__(self) -> Clients:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def swap(models_dir: Path, model: Path) -> float:
    """Write ``model`` beside model.onnx and rename it over; returns the rename's monotonic time."""
    tmp = models_dir / ".model.onnx.bench-tmp"
    tmp.write_bytes(model.read_bytes())
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.rename(tmp, models_dir / "model.onnx")
    return time.monotonic()


def measure(swaps: int, clients: int) -> dict:
    """Run the clients through ``swaps`` swaps; returns the figure."""
    a = default_weld_model()
    b = variant(a, "swap")
    shas = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b)}
    data = encoded_frame("jpeg")
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-p7-") as tmp:
        agent = start_agent(Path(tmp), a, SETTINGS)
        poll = requests.Session()
        try:
            with Clients(agent, data, clients) as load:
                time.sleep(1.0)
                for i in range(swaps):
                    new = b if i % 2 == 0 else a
                    renamed = swap(agent.models_dir, new)
                    while served_sha256(agent, poll) != shas[new]:
                        if time.monotonic() - renamed > 60:
                            raise RuntimeError(f"swap {i + 1} not active after 60 s:\n{agent.log()[-2000:]}")
                        time.sleep(0.05)
                    times.append(time.monotonic() - renamed)
                    log(f"P7: swap {i + 1}/{swaps} active after {times[-1]:.2f} s")
                    time.sleep(1.0)
        finally:
            agent.stop()
    notes = [
        f"{clients} clients, {load.ok + load.failed} requests ({load.ok} ok, {load.failed} failed, "
        f"{load.fallback} answered by the rules), {swaps} swaps; answers per model sha: {load.by_model}",
        f"swap-to-active: median {statistics.median(times):.2f} s, max {max(times):.2f} s (rename -> GET model "
        f"reports the new sha256; includes the agent's poll interval and stable-file check)",
    ]
    if load.errors:
        notes.append(f"first errors: {load.errors[:3]}")
    return figure(
        "P7",
        "failed inspect requests during model hot swaps",
        ("failed", load.failed, "req"),
        ("swap-to-active", round(statistics.median(times), 2), "s"),
        None,
        "<= 0",
        notes,
        {"swap_s": times, "ok": load.ok, "failed": load.failed, "fallback": load.fallback, "by_model": load.by_model},
        value=load.failed,
    )


def main(argv: list[str] | None = None) -> int:
    """Run P7 and print the figure."""
    p = parser(__doc__)
    p.add_argument("--swaps", type=int, default=None, help="number of swaps (default 3, quick 1)")
    p.add_argument("--clients", type=int, default=8)
    args = p.parse_args(argv)
    swaps = args.swaps or (1 if args.quick else 3)
    log(f"P7: {swaps} hot swap(s) under {args.clients} clients")
    emit([measure(swaps, args.clients)], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
