"""Export benchmark pieces: a fast fill of a real data dir, an RSS sampler, timed downloads and ``tar cf -``.

    .venv/bin/python bench/export_bench.py --captures 2000 [--work DIR] [--keep] [--out FILE]

One size on its own (``make bench-export``); ``bench/p3_export.py`` compares 1k and 10k captures with these
pieces. The fill stores ``TEMPLATES`` synthetic 320x240 weld captures through ``CaptureStore.add`` (the
agent's own writing path), then clones their files under new sample ids, each PNG made distinct by a
``tEXt`` chunk naming its index (valid PNG, unchanged pixels, its own sha256), and indexes each clone with
``SampleIndex.insert``. Clones skip the per-file fsyncs of a real capture: thousands of captures take
seconds, not minutes. ``--keep`` keeps the data dir and a later ``--keep`` run reuses it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rdk_agent.camera.synthetic import LABELS, SyntheticWeldGenerator  # noqa: E402
from rdk_agent.launcher import AgentProcess  # noqa: E402
from rdk_agent.storage import CaptureRecord, CaptureStore  # noqa: E402
from rdk_agent.storage.store import new_sample_id  # noqa: E402
from shared_schema import FileRef, default_weld_schema  # noqa: E402

MiB = 1024 * 1024
FRAME_W, FRAME_H = 320, 240
TEMPLATES = 20
AGENT_CONFIG = {"verify_on_start": False}  # the clones' sha256 are right; skipping the check only saves start-up time


def tagged_png(png: bytes, tag: int) -> bytes:
    """``png`` with a ``tEXt`` chunk ``bench=<tag>`` before its IEND chunk: same pixels, different bytes."""
    body = b"tEXt" + b"bench\0" + str(tag).encode()
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return png[:-12] + chunk + png[-12:]


def _templates(store: CaptureStore) -> list[tuple[CaptureRecord, dict[str, bytes]]]:
    """The data dir's template captures (its oldest; stored on first use) with their files' bytes."""
    _, total = store.page(limit=1)
    if not total:
        gen = SyntheticWeldGenerator(seed=7, width=FRAME_W, height=FRAME_H)
        for i in range(TEMPLATES):
            frame = gen.generate(LABELS[i % len(LABELS)])
            store.add(frame.rgb, frame.depth, LABELS[i % len(LABELS)], "bench", meta={"bench_index": i})
        total = TEMPLATES
    records, _ = store.page(limit=TEMPLATES, offset=total - TEMPLATES)
    return [(rec, {ref.path: store.path_of(ref.path).read_bytes() for ref in rec.files()}) for rec in records]


def fill(data_dir: Path, captures: int) -> float:
    """Grow the data dir to ``captures`` labelled captures (templates, then tagged clones); seconds taken."""
    started = time.monotonic()
    store = CaptureStore(data_dir, default_weld_schema(), reserve_bytes=0, verify=False)
    try:
        templates = _templates(store)
        _, have = store.page(limit=1)
        for i in range(have, captures):
            rec, blobs = templates[i % len(templates)]
            sample_id = new_sample_id()
            folder = store.samples_dir / sample_id
            folder.mkdir()
            refs = []
            for ref in rec.files():
                data = tagged_png(blobs[ref.path], i)
                path = folder / Path(ref.path).name
                path.write_bytes(data)
                refs.append(FileRef(f"samples/{sample_id}/{path.name}", hashlib.sha256(data).hexdigest(), len(data)))
            clone = replace(rec, id=sample_id, rgb=refs[0], depth=refs[1] if len(refs) > 1 else None)
            store.index.insert(replace(clone, meta={**rec.meta, "bench_index": i}))
    finally:
        store.close()
    return time.monotonic() - started


def exported_files(data_dir: Path) -> list[str]:
    """The files an export of the data dir sends, in its order (read from the index, read-only)."""
    conn = sqlite3.connect(f"file:{data_dir / 'index.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT rgb_path, depth_path FROM samples WHERE label IS NOT NULL ORDER BY id")
        return [path for row in rows for path in row if path]
    finally:
        conn.close()


class RssSampler(threading.Thread):
    """Samples VmRSS of a pid every ``interval`` seconds; ``peak`` in bytes."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, proc_status(self.pid, "VmRSS"))
            self.stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()
        self.peak = max(self.peak, proc_status(self.pid, "VmRSS"))


def proc_status(pid: int, field: str) -> int:
    """A memory field of /proc/<pid>/status (VmRSS, VmHWM, ...) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def http_export(agent: AgentProcess, fmt: str = "tar") -> dict:
    """``GET dataset/export`` fetched by curl into /dev/null while the agent's RSS is sampled.

    curl (C) is the client so that the agent, not a Python client, sets the pace, as ``tar`` does.
    """
    idle = proc_status(agent.pid, "VmRSS")
    command = ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download} %{time_total} %{time_starttransfer}"]
    command += ["-H", f"Authorization: Bearer {agent.token}", agent.api(f"dataset/export?format={fmt}")]
    with RssSampler(agent.pid) as sampler:
        out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    size, seconds, first = out.stdout.split()
    return {
        "format": fmt,
        "bytes": int(size),
        "seconds": float(seconds),
        "mb_per_s": round(int(size) / MiB / float(seconds), 1),
        "time_to_first_byte_s": float(first),
        "rss_idle_mib": round(idle / MiB, 1),
        "rss_peak_mib": round(sampler.peak / MiB, 1),
        "rss_extra_mib": round((sampler.peak - idle) / MiB, 1),
    }


def tar_read(data_dir: Path, file_list: Path) -> dict:
    """``tar cf -`` of the listed files, read through a pipe by this process in 1 MiB reads."""
    started = time.monotonic()
    size = 0
    command = ["tar", "cf", "-", "-C", str(data_dir), "-T", str(file_list)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, bufsize=0) as proc:
        while chunk := proc.stdout.read(MiB):
            size += len(chunk)
    if proc.returncode != 0:
        raise RuntimeError(f"tar exited with {proc.returncode}")
    seconds = time.monotonic() - started
    return {"bytes": size, "seconds": round(seconds, 3), "mb_per_s": round(size / MiB / seconds, 1)}


def start_agent(work: Path) -> AgentProcess:
    """A real agent serving ``work/data`` (no camera frames are read while nobody asks)."""
    agent = AgentProcess(work / "data", work / "models", token="bench", config=AGENT_CONFIG)
    return agent.start(timeout=600)


def main() -> int:
    """Fill one size, export it as tar and tar.gz and run ``tar cf -``; print a JSON report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--captures", type=int, default=2000)
    p.add_argument("--work", type=Path, default=Path("/tmp/rdk-export-bench"))
    p.add_argument("--out", type=Path)
    p.add_argument("--keep", action="store_true", help="keep the filled data dir for another run")
    args = p.parse_args()

    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    report: dict = {"captures": args.captures, "fill_s": round(fill(args.work / "data", args.captures), 1)}
    file_list = args.work / "files.txt"
    file_list.write_text("\n".join(exported_files(args.work / "data")) + "\n")
    agent = start_agent(args.work)
    try:
        report["exports"] = [http_export(agent, fmt) for fmt in ("tar", "tar", "tar.gz")]
        report["tar_cf"] = tar_read(args.work / "data", file_list)
        report["agent_vmhwm_mib"] = round(proc_status(agent.pid, "VmHWM") / MiB, 1)
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
