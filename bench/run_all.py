"""Run the whole benchmark suite, print one table, write bench/out/results.json.

    .venv/bin/python bench/run_all.py [--quick] [--data PATH] [--only p1,p3] [--out bench/out/results.json]

Each benchmark runs as its own process (``bench/<module>.py --out bench/out/<module>.json``), so its
threads, memory and imports never disturb the next one; a failing or overrunning benchmark is reported
and the suite goes on. The ratios are measured side by side inside each benchmark (interleaved runs,
medians), because the machine is shared. These are benchmarks, not tests: nothing here asserts.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import OUT_DIR, REPO, data_path, log, markdown, parser, skipped, table

# (module, timeout in seconds). accuracy runs before p5: a short training run it makes is then reused.
BENCHMARKS = [
    ("p1_agent_overhead", 300),
    ("p2_ml_vs_rules", 300),
    ("p6_model_size", 240),
    ("p7_hot_swap", 300),
    ("p3_export", 600),
    ("p4_training", 600),
    ("accuracy", 1200),
    ("p5_int8", 900),
]


def machine() -> dict:
    """CPU model, core count and load, as the results should state them."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run_one(module: str, timeout: int, quick: bool, data: Path) -> tuple[list[dict], float]:
    """Run one benchmark process; its figures (or an error figure) and wall seconds."""
    out = OUT_DIR / f"{module}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(REPO / "bench" / f"{module}.py"), "--data", str(data), "--out", str(out)]
    if quick:
        cmd.append("--quick")
    log(f"\n=== {module} ===")
    started = time.monotonic()
    try:
        code = subprocess.run(cmd, cwd=REPO, timeout=timeout).returncode
        why = f"exit code {code}"
    except subprocess.TimeoutExpired:
        code, why = -1, f"overran its {timeout} s limit"
    wall = time.monotonic() - started
    if code == 0 and out.is_file():
        return json.loads(out.read_text()), wall
    return [skipped(module, module, f"failed: {why}")], wall


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and print the table."""
    p = parser(__doc__)
    p.add_argument("--only", default=None, help="comma-separated module names or prefixes (e.g. p1,p3)")
    args = p.parse_args(argv)
    data = data_path(args.data)
    selected = [
        (m, t) for m, t in BENCHMARKS if not args.only or any(m.startswith(s.strip()) for s in args.only.split(","))
    ]
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    before = machine()
    started = time.monotonic()
    figures, walls = [], {}
    for module, timeout in selected:
        got, walls[module] = run_one(module, timeout, args.quick, data)
        figures += got
    total = time.monotonic() - started
    results = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "data": str(data),
        "machine": before,
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "wall_s": {**{k: round(v, 1) for k, v in walls.items()}, "total": round(total, 1)},
        "figures": figures,
    }
    out = args.out or OUT_DIR / "results.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(
        f"\n=== benchmark suite{' (quick)' if args.quick else ''}: {before['cpu']}, {before['cores']} cores, "
        f"load {before['load_avg_1_5_15']} -> {results['load_avg_after']}, {total / 60:.1f} min ==="
    )
    for f in figures:
        for note in f["notes"]:
            print(f"  [{f['id']}] {note}")
    print(table(figures))
    (OUT_DIR / "results.md").write_text(markdown(figures) + "\n")
    print(f"results: {out} (table as Markdown: {OUT_DIR / 'results.md'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
