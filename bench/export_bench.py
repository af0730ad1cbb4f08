"""Export benchmark: HTTP export speed and the agent's peak RSS while exporting N captures.

Fills a fresh data dir with N captures through CaptureStore (the agent's own storage code, with
synthetic weld frames made distinct per capture), starts ``python -m rdk_agent`` on it, then
downloads ``dataset/export`` as tar and tar.gz while sampling the agent's RSS from /proc.

    python bench/export_bench.py --captures 2000 --work /tmp/export-bench [--keep] [--out bench/out/export.json]

``--keep`` keeps the filled data dir, and a later run with ``--keep`` reuses it (no refill).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rdk_agent.camera.synthetic import LABELS, SyntheticWeldGenerator  # noqa: E402
from rdk_agent.launcher import AgentProcess  # noqa: E402
from rdk_agent.storage import CaptureStore  # noqa: E402
from shared_schema import DatasetManifest, default_weld_schema  # noqa: E402

MiB = 1024 * 1024


def fill(data_dir: Path, captures: int, distinct_frames: int = 40) -> float:
    """Store ``captures`` captures; returns seconds taken."""
    gen = SyntheticWeldGenerator(seed=7)
    frames = [gen.generate(LABELS[i % len(LABELS)]) for i in range(distinct_frames)]
    store = CaptureStore(data_dir, default_weld_schema(), reserve_bytes=0, verify=False)
    started = time.monotonic()

    def add(i: int) -> None:
        frame = frames[i % distinct_frames]
        rgb = frame.rgb.copy()
        rgb.reshape(-1)[:8] = list(i.to_bytes(8, "little"))  # distinct content, realistic size
        store.add(rgb, frame.depth, frame.meta.get("label", LABELS[0]), "bench", meta={"bench_index": i})

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(add, range(captures)))
    store.close()
    return time.monotonic() - started


class RssSampler(threading.Thread):
    """Samples VmRSS of a pid every ``interval`` seconds; ``peak`` in bytes."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss(self.pid))
            self.stop.wait(self.interval)


def rss(pid: int, field: str = "VmRSS") -> int:
    """A /proc/<pid>/status memory field in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def download(agent: AgentProcess, fmt: str, verify: bool) -> dict:
    """Stream one export, sampling the agent's RSS; returns the measurements."""
    before = rss(agent.proc.pid)
    sampler = RssSampler(agent.proc.pid)
    sampler.start()
    size, first_byte = 0, None
    digest = hashlib.sha256()
    started = time.monotonic()
    with requests.get(agent.api(f"dataset/export?format={fmt}"), headers=agent.auth, stream=True, timeout=60) as r:
        r.raise_for_status()
        for chunk in r.iter_content(chunk_size=1024 * 1024):
            if first_byte is None:
                first_byte = time.monotonic() - started
            size += len(chunk)
            if verify:
                digest.update(chunk)
    elapsed = time.monotonic() - started
    sampler.stop.set()
    sampler.join()
    return {
        "format": fmt,
        "bytes": size,
        "seconds": round(elapsed, 2),
        "mb_per_s": round(size / MiB / elapsed, 1),
        "time_to_first_byte_s": round(first_byte or 0.0, 3),
        "rss_before_mib": round(before / MiB, 1),
        "rss_peak_during_mib": round(max(sampler.peak, before) / MiB, 1),
    }


def main() -> int:
    """Run the benchmark and print a JSON report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--captures", type=int, default=2000)
    p.add_argument("--work", type=Path, default=Path("/tmp/rdk-export-bench"))
    p.add_argument("--out", type=Path)
    p.add_argument("--keep", action="store_true", help="keep the filled data dir for another run")
    p.add_argument("--verify", action="store_true", help="also sha256 the download on the client")
    p.add_argument("--formats", default="tar,tar.gz", help="comma-separated export formats to time")
    args = p.parse_args()

    data_dir = args.work / "data"
    report: dict = {"captures": args.captures}
    if not (args.keep and data_dir.exists()):
        shutil.rmtree(args.work, ignore_errors=True)
        report["fill_s"] = round(fill(data_dir, args.captures), 1)
    agent = AgentProcess(data_dir, args.work / "models", token="bench")
    started = time.monotonic()
    agent.start(timeout=600)
    report["agent_start_s_with_sha256_verify"] = round(time.monotonic() - started, 1)
    try:
        manifest = DatasetManifest.from_dict(requests.get(agent.api("dataset/manifest"), headers=agent.auth).json())
        report["manifest_samples"] = len(manifest.samples)
        report["dataset_mib"] = round(sum(f.bytes for s in manifest.samples for f in s.files()) / MiB, 1)
        report["exports"] = [download(agent, fmt, args.verify) for fmt in args.formats.split(",")]
        report["agent_vmhwm_mib"] = round(rss(agent.proc.pid, "VmHWM") / MiB, 1)
    finally:
        agent.stop()
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
