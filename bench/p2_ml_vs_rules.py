"""P2: the ML inspection path ÷ the rule path, in process, on the same frames.

    .venv/bin/python bench/p2_ml_vs_rules.py [--quick] [--rounds 8] [--threads N] [--out FILE]

A: the agent's ``Inspector`` with ``rules = on_fallback`` serving the default model (bench/models.py,
confidence threshold 0 so the model decides and the rules stay idle), with the agent's default
intra-op threads capped at this machine's cores (``--threads`` to change); the same at 1 thread is
timed too and given in the notes.
B: ``RuleEvaluator.evaluate`` (the agent's rules, default rubric, OpenCV's default thread pool) on the
same frame and depth.
Frames: synthetic 640x480 weld frames with depth, two of each label; each round runs every frame
through A and B alternately. Goal A / B <= 0.5. For context, the ``always`` mode (rules alongside
the model, the operator page's default) is timed too and reported in the notes.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, figure, interleave, log, median_ms, parser
from bench.models import default_weld_model
from rdk_agent.camera.synthetic import LABELS, SyntheticWeldGenerator
from rdk_agent.inspection.inspector import Inspector
from rdk_agent.inspection.model_manager import ModelManager
from rdk_agent.inspection.onnx_model import DEFAULT_INTRA_OP_THREADS
from rdk_agent.inspection.rubric import Rubric
from rdk_agent.inspection.rules import RuleEvaluator
from rdk_agent.inspection.settings import InspectionSettings
from shared_schema import default_weld_schema


def frames(per_label: int = 2, seed: int = 11) -> list:
    """Synthetic weld frames (BGR + depth), ``per_label`` of each label."""
    gen = SyntheticWeldGenerator(seed=seed)
    return [gen.generate(label) for _ in range(per_label) for label in LABELS]


def inspector(models_dir: Path, rules_mode: str, threads: int) -> Inspector:
    """An Inspector over a started ModelManager, as the agent builds it."""
    schema = default_weld_schema()
    settings = InspectionSettings(
        intra_op_threads=threads,
        rules=rules_mode,
        confidence_threshold=0.0,
        review_threshold=0.0,
        timeout_ms=10_000.0,
        poll_interval_s=60.0,
    )
    models = ModelManager(models_dir, schema, settings)
    models.start()
    return Inspector(models, RuleEvaluator(Rubric.from_dict({}), schema), settings)


def _bound(fn, frame):
    def run() -> None:
        fn(frame)

    return run


def measure(rounds: int, threads: int, with_extras: bool) -> dict:
    """Interleaved ML path vs rule path (and optionally the always mode); returns a figure."""
    model = default_weld_model()
    schema = default_weld_schema()
    rules = RuleEvaluator(Rubric.from_dict({}), schema)
    batch = frames()
    with tempfile.TemporaryDirectory(prefix="bench-p2-") as tmp:
        (Path(tmp) / "model.onnx").write_bytes(model.read_bytes())
        ml = inspector(Path(tmp), "on_fallback", threads)
        ml_1t = inspector(Path(tmp), "on_fallback", 1) if with_extras and threads != 1 else None
        always = inspector(Path(tmp), "always", threads) if with_extras else None
        engines: set[str] = set()
        try:
            runs = {
                "ml": lambda f: engines.add(ml.inspect(f.rgb, f.depth)["engine"]),
                "rules": lambda f: rules.evaluate(f.rgb, f.depth),
            }
            if ml_1t is not None:
                runs["ml_1_thread"] = lambda f: ml_1t.inspect(f.rgb, f.depth)
            if always is not None:
                runs["always"] = lambda f: always.inspect(f.rgb, f.depth)
            samples: dict[str, list[float]] = {name: [] for name in runs}
            for frame in batch:
                got = interleave({name: _bound(fn, frame) for name, fn in runs.items()}, rounds, warmup=1)
                for name, values in got.items():
                    samples[name] += values
        finally:
            for insp in (ml, ml_1t, always):
                if insp is not None:
                    insp.models.stop()
                    insp.close()
    a, b = median_ms(samples["ml"]), median_ms(samples["rules"])
    notes = [
        f"ML path: Inspector rules=on_fallback, {threads} intra-op thread(s), engines seen {sorted(engines)}; "
        f"{len(batch)} frames 640x480 + depth x {rounds} rounds",
        "a real model falls back on some frames; each fallback costs A + B",
    ]
    if ml_1t is not None:
        ml1 = median_ms(samples["ml_1_thread"])
        notes.append(f"ML path at 1 intra-op thread: {ml1} ms, ratio {ml1 / b:.3f} to the rules")
    if always is not None:
        notes.append(f"rules=always (page default, rules parallel to ORT): {median_ms(samples['always'])} ms median")
    return figure(
        "P2",
        "ML inspection path ÷ rule path (in process)",
        ("ML", a, "ms"),
        ("rules", b, "ms"),
        a / b,
        "<= 0.5",
        notes,
        {k: median_ms(v) for k, v in samples.items()},
    )


def main(argv: list[str] | None = None) -> int:
    """Run P2 and print the figure."""
    p = parser(__doc__)
    p.add_argument("--rounds", type=int, default=None, help="runs per frame and side (default 8, quick 2)")
    p.add_argument(
        "--threads",
        type=int,
        default=min(DEFAULT_INTRA_OP_THREADS, os.cpu_count() or 1),
        help="ONNX Runtime intra-op threads (default: the agent's default, capped at the cores)",
    )
    args = p.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 8)
    log(f"P2: ML path vs rule path, {rounds} rounds over 10 frames")
    emit([measure(rounds, args.threads, with_extras=not args.quick)], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
