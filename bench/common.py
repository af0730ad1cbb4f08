"""Shared pieces of the benchmark suite: arguments, interleaved timing, figures, the table, JSON output.

Every benchmark module has a ``main(argv)`` that prints its figures and, with ``--out``, writes them
as JSON (a list of figure dicts, see ``figure``). ``bench/run_all.py`` runs each one in its own process.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "bench" / "out"
DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "magnetic_tile"
_GOAL_OPS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq}


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes: --quick, --data, --out."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repetitions and smaller sizes (a smoke run)")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="magnetic-tile dataset folder (default: $RDK_BENCH_DATA or ../shared/datasets/magnetic_tile)",
    )
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    return p


def data_path(given: Path | None) -> Path:
    """The dataset folder: --data, else $RDK_BENCH_DATA, else ../shared/datasets/magnetic_tile (repo-relative)."""
    path = given or Path(os.environ.get("RDK_BENCH_DATA") or DEFAULT_DATA)
    if not path.is_dir():
        raise SystemExit(f"dataset folder {path} not found (give --data PATH or set RDK_BENCH_DATA)")
    return path.resolve()


def interleave(runs: dict[str, Callable[[], float | None]], n: int, warmup: int = 2) -> dict[str, list[float]]:
    """Run each callable ``warmup + n`` times, alternating A B / B A per round; seconds per run.

    A callable returns the seconds it measured itself, or None to be timed from the outside.
    Alternating the order spreads the machine's load drift evenly over all contenders.
    """
    samples: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for i in range(warmup + n):
        for name in names if i % 2 == 0 else reversed(names):
            started = time.perf_counter()
            measured = runs[name]()
            seconds = measured if measured is not None else time.perf_counter() - started
            if i >= warmup:
                samples[name].append(seconds)
    return samples


def median_ms(seconds: list[float]) -> float:
    """Median of a list of seconds, in milliseconds."""
    return round(statistics.median(seconds) * 1000.0, 3)


def figure(
    fid: str,
    what: str,
    a: tuple[str, float, str],
    b: tuple[str, float, str] | None = None,
    ratio: float | None = None,
    goal: str | None = None,
    notes: list[str] | None = None,
    details: dict | None = None,
    value: float | None = None,
) -> dict:
    """One figure: ``a`` (and ``b``) as (name, median, unit); ``goal`` like ``"<= 1.25"`` applied to the ratio
    (or ``value`` when there is no ratio). ``met`` is None when there is no goal."""
    measured = ratio if ratio is not None else value
    met = None
    if goal is not None and measured is not None:
        op, _, limit = goal.partition(" ")
        met = bool(_GOAL_OPS[op](measured, float(limit)))
    return {
        "id": fid,
        "what": what,
        "a": {"name": a[0], "median": a[1], "unit": a[2]},
        "b": {"name": b[0], "median": b[1], "unit": b[2]} if b else None,
        "ratio": None if ratio is None else round(ratio, 3),
        "value": value,
        "goal": goal,
        "met": met,
        "notes": notes or [],
        "details": details or {},
    }


def skipped(fid: str, what: str, why: str) -> dict:
    """A figure that was not measured, with the reason."""
    return {
        "id": fid,
        "what": what,
        "a": None,
        "b": None,
        "ratio": None,
        "value": None,
        "goal": None,
        "met": None,
        "skipped": why,
        "notes": [why],
        "details": {},
    }


def _fmt(side: dict | None) -> str:
    if not side:
        return "-"
    value = side["median"]
    text = (
        f"{value:.3g}"
        if isinstance(value, float) and abs(value) < 100
        else f"{value:,.0f}"
        if isinstance(value, (int, float))
        else str(value)
    )
    return f"{text} {side['unit']}".strip()


def table(figures: list[dict]) -> str:
    """The printed table: id, what was compared, the medians, the ratio, the goal, met/MISSED."""
    rows = [("id", "compared", "A (median)", "B (median)", "ratio/value", "goal", "result")]
    for f in figures:
        if f.get("skipped"):
            rows.append((f["id"], f["what"], "-", "-", "-", "-", "skipped"))
            continue
        measured = f["ratio"] if f["ratio"] is not None else f["value"]
        result = "report" if f["met"] is None else "met" if f["met"] else "MISSED"
        rows.append(
            (
                f["id"],
                f["what"],
                f"{f['a']['name']}: {_fmt(f['a'])}",
                f"{f['b']['name']}: {_fmt(f['b'])}" if f["b"] else "-",
                "-" if measured is None else f"{measured:.3g}",
                f["goal"] or "-",
                result,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(figures: list[dict]) -> str:
    """The table as Markdown (for bench/RESULTS.md and closing notes)."""
    lines = table(figures).splitlines()
    rows = [lines[0], lines[1].replace("-+-", " | "), *lines[2:]]
    return "\n".join(f"| {row} |" for row in rows)


def emit(figures: list[dict], out: Path | None) -> None:
    """Print the figures' notes and table; write them as JSON to ``out`` when given."""
    for f in figures:
        for note in f["notes"]:
            print(f"  [{f['id']}] {note}")
    print(table(figures), flush=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(figures, indent=2, default=str) + "\n")


def log(message: str) -> None:
    """Progress line on stderr (the table goes to stdout)."""
    print(message, file=sys.stderr, flush=True)
