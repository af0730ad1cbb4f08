"""P9: rsync-to-verdict time on a 500-frame golden set, and the shadow's overhead per inspected frame.

    .venv/bin/python bench/p9_registry.py [--quick] [--golden 500] [--requests 40] [--rounds 3] [--out FILE]

Both parts run real agents (loopback) on the default model (bench/models.py, EfficientNet-Lite0 with a weld
head) and a variant of it (same network, another card, so another sha256).

**P9a, rsync to verdict.** The data dir is filled with ``--golden`` labelled synthetic 640x480 weld frames
(RGB-D) in groups on the test side of the stable split: the golden set. The agent runs with
``promotion: manual`` and no shadow, so a verdict follows the golden-set check at once. The first model is
renamed into the models dir (rsync's temp file + rename) and judged (it scores on all frames); then the
variant is renamed in, and the figure is the time from that rename until ``GET /api/v1/models/<sha>``
shows its verdict: the stable-file check, the card checks, decoding the golden frames and scoring the
challenger with a single-threaded session (the champion's score is kept). The agent's own scoring time
for the pass is reported beside it.

**P9b, shadow overhead.** A second agent with no golden set, ``promotion: manual`` and an endless shadow
serves one model. One client posts the same JPEG frame ``--requests`` times per phase, alternating phases
champion-only (no challenger) and shadow (the other model deployed as challenger, in shadow); between
phases the operator promotes the challenger, so the champion alternates and both phases run the same
network. The figure is the ratio of the median request latency with the shadow to that without. The
frames the shadow actually answered and dropped are reported (a shadow that drops frames costs less).
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from bench.common import emit, figure, log, parser
from bench.models import default_weld_model, variant
from bench.p1_agent_overhead import encoded_frame, start_agent
from bench.p7_hot_swap import swap
from rdk_agent.camera.synthetic import SyntheticWeldGenerator
from rdk_agent.launcher import AgentProcess
from rdk_agent.storage import CaptureStore
from shared_schema import default_weld_schema
from shared_schema.split import is_test_group

BASE = {"confidence_threshold": 0.0, "review_threshold": 0.0, "promotion": "manual"}
DISTINCT_FRAMES = 50  # rendered once each, stored under many golden captures (scoring cost is per capture)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fill_golden(data_dir: Path, n: int) -> None:
    """``n`` labelled golden captures (RGB-D, 640x480, test-side groups) in a fresh data dir."""
    schema = default_weld_schema()
    gen = SyntheticWeldGenerator(seed=9)
    labels = schema.names
    frames = [gen.generate(labels[i % len(labels)]) for i in range(min(n, DISTINCT_FRAMES))]
    groups = (g for g in (f"golden-{i}" for i in range(100 * n)) if is_test_group(g))
    store = CaptureStore(data_dir, schema)
    try:
        for i in range(n):
            frame = frames[i % len(frames)]
            store.add(frame.rgb, frame.depth, labels[i % len(frames) % len(labels)], "bench", group=next(groups))
        assert len(store.golden_samples()) == n
    finally:
        store.close()


def version(agent: AgentProcess, digest: str, session: requests.Session) -> dict | None:
    r = session.get(agent.api(f"models/{digest}"), headers=agent.auth, timeout=30)
    return r.json() if r.status_code == 200 else None


def wait_version(agent: AgentProcess, digest: str, check, session: requests.Session, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        v = version(agent, digest, session)
        if v is not None and check(v):
            return v
        if time.monotonic() > deadline:
            raise RuntimeError(f"version {digest[:12]} stuck at {v}:\n{agent.log()[-2000:]}")
        time.sleep(0.05)


def rsync_to_verdict(golden: int, a: Path, b: Path) -> dict:
    """P9a: seconds from the rename of ``b`` to its verdict, ``a`` being the scored champion."""
    with tempfile.TemporaryDirectory(prefix="bench-p9a-") as tmp:
        root = Path(tmp)
        started = time.monotonic()
        fill_golden(root / "data", golden)
        log(f"P9a: {golden} golden captures stored in {time.monotonic() - started:.1f} s")
        (root / "models").mkdir()
        agent = AgentProcess(root / "data", root / "models", token="bench", config={"inspection": BASE})
        agent.start(timeout=120)
        session = requests.Session()
        try:
            renamed = swap(agent.models_dir, a)
            first = wait_version(agent, sha(a), lambda v: v["verdict"], session)
            first_s = time.monotonic() - renamed
            log(f"P9a: first model {first['verdict']['decision']} after {first_s:.1f} s")
            renamed = swap(agent.models_dir, b)
            second = wait_version(agent, sha(b), lambda v: v["verdict"], session)
            verdict_s = time.monotonic() - renamed
            log(f"P9a: challenger {second['verdict']['decision']} after {verdict_s:.1f} s")
        finally:
            agent.stop()
    return {
        "verdict_s": verdict_s,
        "first_s": first_s,
        "scoring_s": second["golden"]["seconds"],
        "n": second["golden"]["n"],
        "decision": second["verdict"]["decision"],
        "reason": second["verdict"]["reason"],
    }


def timed_requests(agent: AgentProcess, data: bytes, n: int, session: requests.Session) -> list[float]:
    """``n`` sequential POST /inspect of ``data``; seconds each."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = session.post(agent.api("inspect"), files={"image": ("f.jpg", data)}, headers=agent.auth, timeout=60)
        times.append(time.perf_counter() - t0)
        if r.status_code != 200:
            raise RuntimeError(f"inspect failed: HTTP {r.status_code} {r.text[:200]}")
    return times


def shadow_overhead(requests_per_phase: int, rounds: int, a: Path, b: Path) -> dict:
    """P9b: median latency per phase (champion only, shadow), alternating ``rounds`` times."""
    data = encoded_frame("jpeg")
    samples: dict[str, list[float]] = {"champion-only": [], "shadow": []}
    shadowed = dropped = 0
    with tempfile.TemporaryDirectory(prefix="bench-p9b-") as tmp:
        settings = {**BASE, "shadow_frames": 10**9, "golden_check_s": 0.2}
        agent = start_agent(Path(tmp), a, settings)
        session = requests.Session()
        champion, other = a, b
        try:
            timed_requests(agent, data, 3, session)  # warm-up
            for i in range(rounds):
                samples["champion-only"] += timed_requests(agent, data, requests_per_phase, session)
                swap(agent.models_dir, other)
                wait_version(agent, sha(other), lambda v: v["verdict"], session)  # manual: in shadow, waiting
                samples["shadow"] += timed_requests(agent, data, requests_per_phase, session)
                time.sleep(1.0)  # let the shadow queue drain before reading its counts
                counts = version(agent, sha(other), session)["shadow"]
                shadowed, dropped = shadowed + counts["frames"], dropped + counts["dropped"]
                r = session.post(agent.api("model/promote"), json={"sha256": sha(other)}, headers=agent.auth)
                if r.status_code != 200:
                    raise RuntimeError(f"promote failed: {r.text[:300]}")
                champion, other = other, champion
                log(f"P9b: round {i + 1}/{rounds}: shadow answered {counts['frames']}, dropped {counts['dropped']}")
        finally:
            agent.stop()
    return {
        "median_s": {k: statistics.median(v) for k, v in samples.items()},
        "n": {k: len(v) for k, v in samples.items()},
        "shadowed": shadowed,
        "dropped": dropped,
    }


def main(argv: list[str] | None = None) -> int:
    """Run P9a and P9b and print the figures."""
    p = parser(__doc__)
    p.add_argument("--golden", type=int, default=None, help="golden-set size (default 500, quick 60)")
    p.add_argument("--requests", type=int, default=None, help="requests per shadow phase (default 40, quick 10)")
    p.add_argument("--rounds", type=int, default=None, help="champion-only/shadow phase pairs (default 3, quick 1)")
    args = p.parse_args(argv)
    golden = args.golden or (60 if args.quick else 500)
    per_phase = args.requests or (10 if args.quick else 40)
    rounds = args.rounds or (1 if args.quick else 3)
    a = default_weld_model()
    b = variant(a, "challenger")
    v = rsync_to_verdict(golden, a, b)
    s = shadow_overhead(per_phase, rounds, a, b)
    only, shadow = s["median_s"]["champion-only"], s["median_s"]["shadow"]
    figures = [
        figure(
            "P9a",
            f"rsync rename -> golden-set verdict, {v['n']}-frame golden set",
            ("rename to verdict", round(v["verdict_s"], 2), "s"),
            ("agent's scoring pass", round(v["scoring_s"], 2), "s"),
            notes=[
                f"challenger verdict: {v['decision']} ({v['reason']}); the first model (champion scored too) took "
                f"{v['first_s']:.1f} s",
                "scoring: decode each golden PNG (RGB-D) once, preprocess, ORT with 1 intra-op thread, yield per frame",
            ],
            details=v,
            value=round(v["verdict_s"], 2),
        ),
        figure(
            "P9b",
            "POST /inspect latency with a challenger in shadow / champion only",
            ("shadow", round(shadow * 1000, 1), "ms"),
            ("champion only", round(only * 1000, 1), "ms"),
            ratio=shadow / only,
            notes=[
                f"{s['n']['shadow']} + {s['n']['champion-only']} sequential requests in {rounds} alternating phase "
                f"pairs; the shadow answered {s['shadowed']} frames and dropped {s['dropped']}",
            ],
            details=s,
        ),
    ]
    emit(figures, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
