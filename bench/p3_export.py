"""P3: dataset export throughput ÷ ``tar cf -`` of the same files, and the agent's peak RSS at 1k and 5k captures.

    .venv/bin/python bench/p3_export.py [--quick] [--sizes 1000,5000] [--rounds 2] [--work DIR] [--out FILE]

Captures are written through the agent's own CaptureStore (two threads) as small 320x240 synthetic weld
frames with depth (each made distinct), first the smaller size, then topped up to the larger one. For
each size a real agent (``python -m rdk_agent``) serves the data dir and ``GET dataset/export?format=tar``
is fetched by curl while /proc samples the agent's RSS (bench/export_bench.py's sampler). The HTTP export
alternates with ``tar cf - -T <the manifest's files>`` read through a pipe by this process (same files,
same page cache, after a warm-up round); the ratio is taken at the largest size, medians of MB/s.
Goals: export ÷ tar >= 0.8; peak RSS during export <= 150 MiB at every size and flat (largest <= 1.1 x
smallest).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from bench.common import emit, figure, log, parser
from bench.export_bench import RssSampler, rss
from rdk_agent.camera.synthetic import LABELS, SyntheticWeldGenerator
from rdk_agent.launcher import AgentProcess
from rdk_agent.storage import CaptureStore
from shared_schema import DatasetManifest, default_weld_schema

MiB = 1024 * 1024
FRAME_W, FRAME_H = 320, 240
RSS_LIMIT_MIB = 150.0
FLAT_FACTOR = 1.1


def fill(data_dir: Path, start: int, stop: int, distinct: int = 20) -> float:
    """Store captures number ``start``..``stop``-1 (distinct content each); returns seconds taken."""
    gen = SyntheticWeldGenerator(seed=7, width=FRAME_W, height=FRAME_H)
    frames = [gen.generate(LABELS[i % len(LABELS)]) for i in range(distinct)]
    store = CaptureStore(data_dir, default_weld_schema(), reserve_bytes=0, verify=False)
    started = time.monotonic()

    def add(i: int) -> None:
        frame = frames[i % distinct]
        rgb = frame.rgb.copy()
        rgb.reshape(-1)[:8] = list(i.to_bytes(8, "little"))
        store.add(rgb, frame.depth, LABELS[i % len(LABELS)], "bench", meta={"bench_index": i})

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(add, range(start, stop)))
    finally:
        store.close()
    return time.monotonic() - started


def tar_read(data_dir: Path, file_list: Path) -> tuple[int, float]:
    """``tar cf -`` of the listed files read through a pipe; (bytes, seconds)."""
    started = time.monotonic()
    size = 0
    with subprocess.Popen(
        ["tar", "cf", "-", "-C", str(data_dir), "-T", str(file_list)], stdout=subprocess.PIPE, bufsize=0
    ) as proc:
        while chunk := proc.stdout.read(MiB):
            size += len(chunk)
    if proc.returncode != 0:
        raise RuntimeError(f"tar exited with {proc.returncode}")
    return size, time.monotonic() - started


def http_read(agent: AgentProcess) -> dict:
    """``GET dataset/export?format=tar`` fetched by curl into /dev/null while the agent's RSS is sampled.

    curl (C) is the client so that the agent, not a Python client, sets the pace, as ``tar`` does.
    """
    sampler = RssSampler(agent.proc.pid)
    before = rss(agent.proc.pid)
    sampler.start()
    try:
        out = subprocess.run(
            [
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{size_download} %{time_total} %{time_starttransfer}",
                "-H",
                f"Authorization: Bearer {agent.token}",
                agent.api("dataset/export?format=tar"),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
    finally:
        sampler.stop.set()
        sampler.join()
    size, seconds, first = out.stdout.split()
    return {
        "bytes": int(size),
        "mb_per_s": round(int(size) / MiB / float(seconds), 1),
        "seconds": float(seconds),
        "time_to_first_byte_s": float(first),
        "rss_before_mib": round(before / MiB, 1),
        "rss_peak_during_mib": round(max(sampler.peak, before) / MiB, 1),
    }


def measure_size(work: Path, captures: int, rounds: int) -> dict:
    """Start an agent on the data dir; export and tar alternately ``rounds`` times; RSS and MB/s."""
    data_dir = work / "data"
    agent = AgentProcess(data_dir, work / "models", token="bench")
    started = time.monotonic()
    agent.start(timeout=900)
    out: dict = {"captures": captures, "agent_start_s": round(time.monotonic() - started, 1)}
    try:
        manifest = DatasetManifest.from_dict(
            requests.get(agent.api("dataset/manifest"), headers=agent.auth, timeout=120).json()
        )
        files = [f.path for s in manifest.samples for f in s.files()]
        out["samples"], out["files"] = len(manifest.samples), len(files)
        out["dataset_mib"] = round(sum(f.bytes for s in manifest.samples for f in s.files()) / MiB, 1)
        file_list = work / "files.txt"
        file_list.write_text("\n".join(files) + "\n")
        http, tar = [], []
        for i in range(rounds + 1):  # round 0 warms the page cache and both paths
            pair = [("http", lambda: http_read(agent)), ("tar", lambda: tar_read(data_dir, file_list))]
            for name, run in pair if i % 2 == 0 else reversed(pair):
                result = run()
                if name == "http":
                    http.append(result)  # every export counts for the RSS peak
                elif i > 0:
                    tar.append(result[0] / MiB / result[1])
        out["http"] = http
        out["http_mb_s"] = statistics.median(r["mb_per_s"] for r in http[1:])
        out["tar_mb_s"] = round(statistics.median(tar), 1)
        out["rss_peak_mib"] = max(r["rss_peak_during_mib"] for r in http)
        out["rss_before_mib"] = http[0]["rss_before_mib"]
    finally:
        agent.stop()
    return out


def measure(sizes: list[int], rounds: int, work: Path) -> list[dict]:
    """Fill up to each size in turn, measure; returns the throughput and RSS figures."""
    shutil.rmtree(work, ignore_errors=True)
    results, have = [], 0
    for size in sorted(sizes):
        log(f"P3: filling {have} -> {size} captures ({FRAME_W}x{FRAME_H} + depth)")
        fill_s = fill(work / "data", have, size)
        have = size
        log(f"P3: filled in {fill_s:.0f} s; exporting")
        result = measure_size(work, size, rounds)
        result["fill_s"] = round(fill_s, 1)
        results.append(result)
    shutil.rmtree(work, ignore_errors=True)
    big, small = results[-1], results[0]
    ratio = big["http_mb_s"] / big["tar_mb_s"]
    throughput = figure(
        "P3a",
        f"export tar MB/s ÷ tar cf - ({big['captures']} captures)",
        ("HTTP export", big["http_mb_s"], "MB/s"),
        ("tar cf -", big["tar_mb_s"], "MB/s"),
        ratio,
        ">= 0.8",
        [
            f"{big['samples']} samples, {big['files']} files, {big['dataset_mib']} MiB; frames {FRAME_W}x{FRAME_H} PNG "
            f"+ 16-bit depth PNG; {rounds} interleaved rounds after a warm-up round; page cache warm for both",
            f"HTTP client: curl to /dev/null; agent time to first byte (manifest snapshot) "
            f"{statistics.median(r['time_to_first_byte_s'] for r in big['http'])} s",
        ],
        {"sizes": results},
    )
    peaks = {r["captures"]: r["rss_peak_mib"] for r in results}
    flat = big["rss_peak_mib"] <= FLAT_FACTOR * small["rss_peak_mib"]
    rss = figure(
        "P3b",
        f"agent peak RSS while exporting {small['captures']} vs {big['captures']} captures",
        (f"{small['captures']}", small["rss_peak_mib"], "MiB"),
        (f"{big['captures']}", big["rss_peak_mib"], "MiB"),
        None,
        f"<= {RSS_LIMIT_MIB:g}",
        [
            f"peak RSS by size (MiB): {peaks}; flat means largest <= {FLAT_FACTOR} x "
            f"smallest: {'yes' if flat else 'NO'}; idle agent before the export: "
            f"{ {r['captures']: r['rss_before_mib'] for r in results} } MiB"
        ],
        {"peaks_mib": peaks, "flat": flat},
        value=max(peaks.values()),
    )
    rss["met"] = bool(rss["met"] and flat)
    return [throughput, rss]


def main(argv: list[str] | None = None) -> int:
    """Run P3 and print the figures."""
    p = parser(__doc__)
    p.add_argument("--sizes", default=None, help="capture counts (default 1000,5000; quick 200,1000)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved export/tar rounds (default 2, quick 1)")
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary folder)")
    args = p.parse_args(argv)
    sizes = [int(s) for s in (args.sizes or ("200,1000" if args.quick else "1000,5000")).split(",")]
    rounds = args.rounds or (1 if args.quick else 2)
    with tempfile.TemporaryDirectory(prefix="bench-p3-") as tmp:
        figures = measure(sizes, rounds, args.work or Path(tmp) / "work")
    emit(figures, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
