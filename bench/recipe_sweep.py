"""Train several recipe variants side by side and tabulate their validation and test figures.

Each variant is a list of Hydra overrides on top of ``+experiment=<experiment> data.source=<data>``;
the variants come from a YAML file (``bench/sweeps/*.yaml``: ``{name: [override, ...]}``). Runs go
``--parallel`` at a time, each in its own process and run dir under ``--out``; ``results.json`` and
``results.md`` are rewritten after every finished run, so a sweep cut short still reports what ran.
Wall times are only comparable within one sweep on one machine.

    python bench/recipe_sweep.py --data ../shared/datasets/magnetic_tile --sweep bench/sweeps/magnetic_tile.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def load_sweep(path: Path, only: list[str] | None) -> dict[str, list[str]]:
    """Variant name -> overrides, in file order (optionally only the named ones)."""
    variants = yaml.safe_load(path.read_text()) or {}
    if not isinstance(variants, dict):
        raise SystemExit(f"{path}: expected a mapping of variant name to a list of overrides")
    unknown = set(only or ()) - set(variants)
    if unknown:
        raise SystemExit(f"{path}: no variant named {', '.join(sorted(unknown))}")
    return {name: list(ov or []) for name, ov in variants.items() if not only or name in only}


def summarise(name: str, overrides: list[str], run_dir: Path, wall: float, code: int) -> dict:
    """One row: the run's test/val figures from its metrics.json, or its failure."""
    row = {"name": name, "overrides": overrides, "wall_s": round(wall, 1), "exit": code, "dir": str(run_dir)}
    metrics_file = run_dir / "metrics.json"
    if code != 0 or not metrics_file.is_file():
        return row
    metrics = json.loads(metrics_file.read_text())
    for split in ("val", "test"):
        part = metrics.get(split) or {}
        row[f"{split}_acc"] = part.get("accuracy")
        row[f"{split}_f1"] = part.get("macro_f1")
        errors = part.get("errors")
        if errors is None and part.get("confusion_matrix"):
            matrix = part["confusion_matrix"]
            errors = sum(sum(r) for r in matrix) - sum(matrix[i][i] for i in range(len(matrix)))
        row[f"{split}_errors"] = errors
    row["macs"] = (metrics.get("model") or {}).get("macs")
    return row


def write_tables(rows: list[dict], out: Path) -> None:
    """results.json and a Markdown table, sorted by the order the variants were given."""
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "| variant | val acc | val F1 | test acc | test F1 | test errors | wall s | overrides |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def fmt(value, spec=".4f") -> str:
        return format(value, spec) if isinstance(value, (int, float)) else "-"

    for r in rows:
        overrides = " ".join(r["overrides"]) or "(baseline)"
        failed = "" if r["exit"] == 0 else f" (failed: exit {r['exit']})"
        lines.append(
            f"| {r['name']} | {fmt(r.get('val_acc'))} | {fmt(r.get('val_f1'))} | {fmt(r.get('test_acc'))} | "
            f"{fmt(r.get('test_f1'))} | {fmt(r.get('test_errors'), 'd')} | {r['wall_s']:.0f} | {overrides}{failed} |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run the sweep; exit status 1 when any variant failed."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--data", required=True, type=Path, help="the dataset source (folder, archive or agent URL)")
    p.add_argument("--sweep", required=True, type=Path, help="YAML file: {variant: [override, ...]}")
    p.add_argument("--only", nargs="*", help="run only these variants")
    p.add_argument("--experiment", default="baseline")
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "sweep")
    p.add_argument("--deadline-s", type=float, default=None, help="start no run after this many seconds")
    p.add_argument("--common", nargs="*", default=[], help="overrides added to every variant")
    args = p.parse_args(argv)

    variants = load_sweep(args.sweep, args.only)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    pending = list(variants.items())
    running: list[tuple[str, list[str], Path, float, subprocess.Popen]] = []
    rows: list[dict] = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    while pending or running:
        late = args.deadline_s is not None and time.monotonic() - started > args.deadline_s
        while pending and len(running) < args.parallel and not late:
            name, overrides = pending.pop(0)
            run_dir = (args.out / name).resolve()
            cmd = [
                sys.executable,
                "-m",
                "desktop_trainer",
                f"+experiment={args.experiment}",
                f"data.source={args.data}",
                f"hydra.run.dir={run_dir}",
                "data.progress=false",
                "trainer.enable_progress_bar=false",
                *args.common,
                *overrides,
            ]
            run_dir.mkdir(parents=True, exist_ok=True)
            log = open(run_dir / "sweep.log", "wb")  # noqa: SIM115 - closed when the run ends
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
            running.append((name, overrides, run_dir, time.monotonic(), proc))
            print(f"started {name}: {' '.join(overrides)}", flush=True)
        if late and pending:
            print(f"deadline: not starting {', '.join(n for n, _ in pending)}", flush=True)
            pending.clear()
        time.sleep(1.0)
        for entry in list(running):
            name, overrides, run_dir, t0, proc = entry
            if proc.poll() is None:
                continue
            running.remove(entry)
            row = summarise(name, overrides, run_dir, time.monotonic() - t0, proc.returncode)
            rows.append(row)
            order = list(variants)
            rows.sort(key=lambda r: order.index(r["name"]))
            write_tables(rows, args.out)
            print(f"finished {name}: exit {proc.returncode}, test acc {row.get('test_acc')}", flush=True)
    print((args.out / "results.md").read_text())
    return 0 if all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
