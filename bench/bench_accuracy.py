"""Benchmark (not a test): train ``+experiment=baseline`` on a real folder-per-class dataset and print the figures.

    python bench/bench_accuracy.py [DATA] [hydra overrides...]
    RDK_BENCH_DATA=/path python bench/bench_accuracy.py

DATA defaults to ../shared/datasets/magnetic_tile (images ``*.jpg``; the PNGs beside them are masks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

DEFAULT_DATA = "../shared/datasets/magnetic_tile"


def main(argv: list[str]) -> int:
    """Run the baseline on the dataset and print accuracy, macro-F1, per-class recall, time, MACs, latency."""
    data = argv[0] if argv and "=" not in argv[0] else os.environ.get("RDK_BENCH_DATA", DEFAULT_DATA)
    overrides = [a for a in argv if "=" in a]
    if not Path(data).is_dir():
        print(f"dataset folder {data} not found (give a path or set RDK_BENCH_DATA)", file=sys.stderr)
        return 2
    run_dir = Path("outputs/bench") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    cmd = [
        sys.executable,
        "-m",
        "desktop_trainer",
        "+experiment=baseline",
        f"data.source={Path(data).resolve()}",
        "data.glob=*.jpg",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]
    print("running:", " ".join(cmd), flush=True)
    started = time.time()
    code = subprocess.call(cmd)
    wall = time.time() - started
    if code != 0:
        print(f"training failed with exit code {code}", file=sys.stderr)
        return code
    metrics = json.loads((run_dir / "metrics.json").read_text())
    test = metrics["test"]
    print("\n=== bench_accuracy ===")
    print(f"dataset       : {data} ({metrics['dataset']['samples']} images)")
    print(f"split (test)  : {metrics['split_sizes']['test']}")
    print(f"model         : {metrics['model']['architecture']} {metrics['model']['input']}")
    print(f"test accuracy : {test['accuracy']:.4f}")
    print(f"test macro-F1 : {test['macro_f1']:.4f}")
    for label, row in test["per_class"].items():
        print(f"  recall {label:<14} {row['recall']:.3f}  (n={row['support']})")
    print(
        f"wall time     : {wall / 60:.1f} min (training {metrics['training']['seconds'] / 60:.1f} min, "
        f"{metrics['training']['epochs']} epochs)"
    )
    print(f"MACs          : {metrics['model']['macs'] / 1e6:.1f} M")
    print(f"ORT latency   : {metrics['latency']['fp32']['median_ms']} ms (1 thread, this CPU)")
    if "int8" in metrics:
        print(
            f"int8          : accuracy {metrics['int8']['test']['accuracy']:.4f}, macro-F1 "
            f"{metrics['int8']['test']['macro_f1']:.4f}, {metrics['latency']['int8']['median_ms']} ms"
        )
    print(f"run dir       : {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
