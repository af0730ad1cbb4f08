"""P3: the dataset export at two sizes side by side: MB/s against ``tar cf -``, the agent's extra RSS, its imports.

    .venv/bin/python bench/p3_export.py [--quick] [--sizes 1000,10000] [--rounds 5] [--work DIR] [--out FILE]

Two data dirs are filled (bench/export_bench.py: 320x240 synthetic weld captures with depth, cloned with
distinct bytes) and served by two real agents (``python -m rdk_agent``, no model, camera idle) at once.
Each agent's idle RSS is read before its first export. Then, per round, in alternating order: for each
size, ``GET dataset/export?format=tar`` fetched by curl into /dev/null while /proc/<pid>/status VmRSS is
sampled every 10 ms, and ``tar cf - -T <the same files>`` read through a pipe by this process (same files,
same page cache). Round 0 warms the page cache and is left out of the MB/s medians, not of the RSS peaks.
Last, one tar.gz export of the smallest size, for its memory (deflate makes it CPU-bound).

Goals: export ÷ tar >= 0.8 at every size (medians of MB/s; the lowest ratio is judged); the export's
extra RSS (peak during any export - idle before the first) <= 10 MiB at every size, and flat: the largest
size's extra at most 2 MiB above the smallest's (the old export grew 5-6 KiB per capture, 45-54 MiB from
1k to 10k).
P3c reports the idle agent's RSS and what each import costs (RSS after each, in a fresh interpreter).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, figure, log, parser
from bench.export_bench import MiB, exported_files, fill, http_export, proc_status, start_agent, tar_read
from rdk_agent.launcher import AgentProcess

EXTRA_LIMIT_MIB = 10.0
FLAT_MIB = 2.0
IMPORTS = ("numpy", "cv2", "onnxruntime", "flask", "waitress", "rdk_agent.app")
_IMPORT_RSS = """
import importlib, json, sys
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:")) / 1024
steps = [("python", rss())]
for name in sys.argv[1:]:
    importlib.import_module(name)
    steps.append((name, rss()))
print(json.dumps(steps))
"""


def import_costs() -> list[tuple[str, float]]:
    """RSS (MiB) of a fresh interpreter, then after each of ``IMPORTS`` in turn (the agent's heavy imports)."""
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_RSS, *IMPORTS], capture_output=True, text=True, check=True, timeout=120
    )
    return [(name, round(mib, 1)) for name, mib in json.loads(out.stdout)]


def measure(sizes: list[int], rounds: int, work: Path) -> dict:
    """Fill, start one agent per size, run the interleaved rounds; the raw figures per size."""
    agents: dict[int, AgentProcess] = {}
    results: dict[int, dict] = {}
    try:
        for size in sizes:
            root = work / str(size)
            log(f"P3: filling {size} captures")
            fill_s = fill(root / "data", size)
            (root / "files.txt").write_text("\n".join(exported_files(root / "data")) + "\n")
            started = time.monotonic()
            agents[size] = start_agent(root)
            time.sleep(1.0)  # let start-up settle before the idle reading
            pid = agents[size].pid
            results[size] = {
                "captures": size,
                "fill_s": round(fill_s, 1),
                "agent_start_s": round(time.monotonic() - started, 1),
                "rss_idle_mib": round(proc_status(pid, "VmRSS") / MiB, 1),
                "vmhwm_idle_mib": round(proc_status(pid, "VmHWM") / MiB, 1),
                "http": [],
                "tar": [],
            }
        for i in range(rounds + 1):
            log(f"P3: round {i} of {rounds} (0 warms up)")
            for size in sizes if i % 2 == 0 else reversed(sizes):
                root, res = work / str(size), results[size]
                pair = [
                    ("http", partial(http_export, agents[size])),
                    ("tar", partial(tar_read, root / "data", root / "files.txt")),
                ]
                for name, run in pair if i % 2 == 0 else reversed(pair):
                    res[name].append({**run(), "round": i})
        log(f"P3: one tar.gz export of {sizes[0]} captures (CPU-bound deflate: memory only)")
        results[sizes[0]]["gzip"] = http_export(agents[sizes[0]], "tar.gz")
        for size, res in results.items():
            res["vmhwm_after_mib"] = round(proc_status(agents[size].pid, "VmHWM") / MiB, 1)
    finally:
        for agent in agents.values():
            agent.stop()
    for res in results.values():
        timed = [r for r in res["http"] if r["round"] > 0]
        res["bytes"] = res["http"][0]["bytes"]
        res["http_mb_s"] = statistics.median(r["mb_per_s"] for r in timed)
        res["tar_mb_s"] = statistics.median(r["mb_per_s"] for r in res["tar"] if r["round"] > 0)
        res["ratio"] = round(res["http_mb_s"] / res["tar_mb_s"], 3)
        res["rss_peak_mib"] = max(r["rss_peak_mib"] for r in res["http"])
        res["rss_extra_mib"] = round(res["rss_peak_mib"] - res["rss_idle_mib"], 1)
        res["time_to_first_byte_s"] = statistics.median(r["time_to_first_byte_s"] for r in res["http"])
    return results


def figures(results: dict[int, dict], rounds: int, imports: list[tuple[str, float]]) -> list[dict]:
    """P3a (throughput ratio), P3b (extra RSS at the smallest and largest size), P3c (idle RSS, import costs)."""
    small, big = results[min(results)], results[max(results)]
    worst = min(results.values(), key=lambda r: r["ratio"])
    throughput = figure(
        "P3a",
        f"export tar MB/s ÷ tar cf - (the lower of {', '.join(map(str, results))} captures: {worst['captures']})",
        ("HTTP export", worst["http_mb_s"], "MB/s"),
        ("tar cf -", worst["tar_mb_s"], "MB/s"),
        worst["ratio"],
        ">= 0.8",
        [
            f"{r['captures']} captures: {r['bytes'] / MiB:.0f} MiB, export {r['http_mb_s']} MB/s vs tar "
            f"{r['tar_mb_s']} MB/s = {r['ratio']}, time to first byte {r['time_to_first_byte_s']} s "
            f"(the manifest pass)"
            for r in results.values()
        ]
        + [f"{rounds} interleaved rounds after a warm-up round; HTTP client curl to /dev/null; page cache warm"],
        {"sizes": list(results.values())},
    )
    extras = {r["captures"]: r["rss_extra_mib"] for r in results.values()}
    flat = big["rss_extra_mib"] <= small["rss_extra_mib"] + FLAT_MIB
    memory = figure(
        "P3b",
        f"agent RSS added by an export, {small['captures']} vs {big['captures']} captures",
        (f"{small['captures']}", small["rss_extra_mib"], "MiB"),
        (f"{big['captures']}", big["rss_extra_mib"], "MiB"),
        None,
        f"<= {EXTRA_LIMIT_MIB:g}",
        [
            f"peak VmRSS during any of {rounds + 1} exports - idle VmRSS before the first, per size: {extras} MiB; "
            f"flat (largest <= smallest + {FLAT_MIB:g} MiB): {'yes' if flat else 'NO'}",
            f"tar.gz of {small['captures']} captures after those: {small['gzip']['mb_per_s']} MB/s, peak VmRSS "
            f"{small['gzip']['rss_peak_mib'] - small['rss_idle_mib']:.1f} MiB above the first idle reading",
            "idle / peak / VmHWM before -> after (MiB): "
            + "; ".join(
                f"{r['captures']}: {r['rss_idle_mib']} / {r['rss_peak_mib']} / {r['vmhwm_idle_mib']} -> "
                f"{r['vmhwm_after_mib']}"
                for r in results.values()
            ),
        ],
        {"extra_mib": extras, "flat": flat},
        value=max(extras.values()),
    )
    memory["met"] = bool(memory["met"] and flat)
    steps = [f"{name} +{mib - prev:.1f}" for (name, mib), (_, prev) in zip(imports[1:], imports, strict=False)]
    idle = figure(
        "P3c",
        "idle agent RSS and its imports (no model loaded)",
        ("idle agent", small["rss_idle_mib"], "MiB"),
        ("imports alone", imports[-1][1], "MiB"),
        None,
        None,
        [
            f"RSS after each import in a fresh interpreter (MiB): python {imports[0][1]}, " + ", ".join(steps),
            f"idle agent at {big['captures']} captures: {big['rss_idle_mib']} MiB (start-up reads every index row)",
        ],
        {"imports_mib": imports},
    )
    return [throughput, memory, idle]


def main(argv: list[str] | None = None) -> int:
    """Run P3 and print the figures."""
    p = parser(__doc__)
    p.add_argument("--sizes", default=None, help="capture counts (default 1000,10000; quick 200,1000)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds after the warm-up (default 5, quick 1)")
    p.add_argument("--work", type=Path, default=None, help="scratch folder, emptied first (default: a temporary one)")
    args = p.parse_args(argv)
    sizes = sorted(int(s) for s in (args.sizes or ("200,1000" if args.quick else "1000,10000")).split(","))
    rounds = args.rounds or (1 if args.quick else 5)
    with tempfile.TemporaryDirectory(prefix="bench-p3-") as tmp:
        work = args.work or Path(tmp)
        shutil.rmtree(work, ignore_errors=True)
        try:
            results = measure(sizes, rounds, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    emit(figures(results, rounds, import_costs()), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
