"""Trained magnetic-tile runs for P5 and the accuracy figure: find one under outputs/, or train a short one.

A usable run dir holds ``model.onnx``, ``model.int8.onnx`` and ``metrics.json`` of a ``+experiment=baseline``
run on the magnetic-tile folder. A full-schedule run is preferred over a short one, then the newest.
``train_short`` calls the trainer's own bench/bench_accuracy.py with a shortened schedule (stated in
``SHORT_OVERRIDES``) so that the suite stays within its time budget on a 2-core machine.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from bench.common import REPO, log

SHORT_OVERRIDES = (
    "trainer.max_epochs=1",
    "data.image_size=128",
    "export.bpu=false",
    "export.latency_runs=5",
    "export.calibration_images=64",
    "trainer.enable_progress_bar=false",
)
FULL_EPOCHS = 10


def run_info(run_dir: Path) -> dict | None:
    """What a run dir holds (None if it is not a complete magnetic-tile baseline run with an int8 model)."""
    if not all((run_dir / name).is_file() for name in ("model.onnx", "model.int8.onnx", "metrics.json")):
        return None
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = metrics.get("config") or {}
    if config.get("task_name") != "baseline" or "int8" not in metrics:
        return None
    max_epochs = int((config.get("trainer") or {}).get("max_epochs") or 0)
    return {
        "dir": run_dir,
        "metrics": metrics,
        "max_epochs": max_epochs,
        "full": max_epochs >= FULL_EPOCHS,
        "sources": metrics["dataset"]["sources"],
    }


def find_run(data: Path, root: Path = REPO / "outputs") -> dict | None:
    """The best complete baseline run on ``data`` under ``root`` (full schedule first, then newest)."""
    found = []
    for metrics in root.glob("**/metrics.json"):
        info = run_info(metrics.parent)
        if info is not None and any(Path(s).resolve() == data.resolve() for s in info["sources"]):
            found.append((info["full"], metrics.stat().st_mtime, info))
    return max(found, key=lambda t: t[:2])[2] if found else None


def train_short(data: Path, timeout_s: float = 900) -> dict:
    """Train the baseline on a short schedule through bench/bench_accuracy.py; the run's info."""
    cmd = [sys.executable, str(REPO / "bench" / "bench_accuracy.py"), str(data), *SHORT_OVERRIDES]
    log(f"training a short baseline run: {' '.join(cmd[1:])}")
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    sys.stderr.write(out.stdout[-3000:])
    if out.returncode != 0:
        raise RuntimeError(f"bench_accuracy.py failed ({out.returncode}):\n{out.stderr[-3000:]}")
    match = re.search(r"^run dir\s*:\s*(\S+)", out.stdout, re.M)
    info = run_info(REPO / match.group(1)) if match else None
    if info is None:
        raise RuntimeError(f"no complete run dir in bench_accuracy.py's output:\n{out.stdout[-2000:]}")
    return info


def describe(info: dict) -> str:
    """One line: where the run is and how it was trained."""
    m = info["metrics"]
    schedule = "full baseline schedule" if info["full"] else f"SHORT schedule ({info['max_epochs']} epoch(s))"
    return (
        f"run {info['dir'].relative_to(REPO) if info['dir'].is_relative_to(REPO) else info['dir']}: "
        f"{m['model']['architecture']} {m['model']['input']}, {m['training']['epochs']} epochs trained, "
        f"{schedule}"
    )
