"""Accuracy figures: the magnetic-tile baseline, the rules' agreement on synthetic frames, the demo's ML vs rules.

    .venv/bin/python bench/accuracy.py [--quick] [--model-dir RUN_DIR] [--train] [--data PATH] [--out FILE]

* Magnetic tile: the test accuracy and macro-F1 of a ``+experiment=baseline`` run made by the trainer's
  bench/bench_accuracy.py. A run already under outputs/ is reported (full schedule preferred, see
  bench/runs.py); without one, or with ``--train``, bench_accuracy.py is called on a short schedule (the
  full one takes well over the suite's 20 minutes on 2 shared cores). --quick never trains.
* Rules: bench/rules_agreement.py's agreement of the rule-based evaluator with the synthetic generator's
  labels on a held-out seed (the brief's rules reach 60-70 % with human inspectors).
* Demo: ML vs rules accuracy on fresh synthetic frames, read from var/demo/summary.json when the demo ran.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, data_path, emit, figure, log, parser, skipped
from bench.rules_agreement import measure as rules_agreement
from bench.runs import describe, find_run, run_info, train_short

DEMO_SUMMARY = REPO / "var" / "demo" / "summary.json"


def magnetic_tile(info: dict) -> dict:
    """The run's test accuracy and macro-F1."""
    m = info["metrics"]
    test = m["test"]
    recalls = ", ".join(f"{k} {v['recall']:.2f}" for k, v in test["per_class"].items())
    notes = [describe(info), f"test split {m['split_sizes']['test']['total']} images; recall: {recalls}"]
    return figure(
        "ACC-mt",
        "magnetic-tile test accuracy (baseline, trainer's bench)",
        ("accuracy", round(test["accuracy"] * 100, 2), "%"),
        ("macro-F1", round(test["macro_f1"] * 100, 2), "%"),
        None,
        None,
        notes,
        {"run_dir": str(info["dir"]), "test": test},
        value=round(test["accuracy"], 4),
    )


def rules(per_label: int) -> dict:
    """Rule agreement with the generator's labels."""
    out = rules_agreement(per_label, seed=1234, use_depth=True)
    return figure(
        "ACC-rules",
        "rule evaluator agreement with synthetic labels (held-out seed)",
        ("5-class", round(out["agreement"] * 100, 1), "%"),
        ("pass/fail", round(out["pass_fail_agreement"] * 100, 1), "%"),
        None,
        None,
        [
            f"{out['frames']} frames, seed 1234, depth on; recall "
            f"{ {k: round(v, 2) for k, v in out['recall'].items()} }; rules {out['evaluate_ms']:.0f} ms/frame"
        ],
        out,
        value=round(out["agreement"], 4),
    )


def demo() -> dict:
    """The demo's ML vs rules accuracy (from its summary file)."""
    what = "demo: ML vs rules accuracy on fresh synthetic frames"
    if not DEMO_SUMMARY.is_file():
        return skipped("ACC-demo", what, f"{DEMO_SUMMARY.relative_to(REPO)} not found (run make demo first)")
    s = json.loads(DEMO_SUMMARY.read_text())
    return figure(
        "ACC-demo",
        what,
        ("ML (onnx)", round(s["onnx_accuracy"] * 100, 1), "%"),
        ("rules", round(s["rules_accuracy"] * 100, 1), "%"),
        None,
        None,
        [f"from {DEMO_SUMMARY.relative_to(REPO)}, written {_mtime(DEMO_SUMMARY)}; engines {s.get('engines')}"],
        s,
        value=round(s["onnx_accuracy"] - s["rules_accuracy"], 4),
    )


def _mtime(path: Path) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def main(argv: list[str] | None = None) -> int:
    """Run the accuracy figures and print them."""
    p = parser(__doc__)
    p.add_argument("--model-dir", type=Path, default=None, help="report this run dir instead of searching")
    p.add_argument("--train", action="store_true", help="train a short baseline run even if one exists")
    args = p.parse_args(argv)
    figures = []
    data = data_path(args.data)
    info = run_info(args.model_dir) if args.model_dir else None if args.train else find_run(data)
    if info is None and args.quick:
        figures.append(
            skipped(
                "ACC-mt",
                "magnetic-tile test accuracy",
                "--quick: bench_accuracy.py (training) skipped and no finished run under outputs/",
            )
        )
    else:
        figures.append(magnetic_tile(info or train_short(data)))
    log("accuracy: rules agreement")
    figures.append(rules(8 if args.quick else 40))
    figures.append(demo())
    emit(figures, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
