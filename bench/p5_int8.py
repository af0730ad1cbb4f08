"""P5: int8 ÷ fp32 ONNX Runtime latency, and the top-1 accuracy difference on the magnetic-tile test split.

    .venv/bin/python bench/p5_int8.py [--quick] [--model-dir RUN_DIR] [--data PATH] [--out FILE]

The models come from a ``+experiment=baseline`` run dir (``--model-dir``, else the best one found under
outputs/, see bench/runs.py); without one a short run is trained first (not in --quick, which then skips).
The test split is rebuilt with the trainer's own datamodule from the run's saved config (the split is a
stable hash of each sample, so it is the run's test split); both models classify it with ONNX Runtime.
Latency: one preprocessed test image, 1 intra-op thread, fp32 and int8 alternating; medians.
Goals: report the latency ratio; accuracy drop (fp32 - int8) <= 1 point.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from omegaconf import OmegaConf

from bench.common import data_path, emit, figure, interleave, log, median_ms, parser, skipped
from bench.runs import describe, find_run, run_info, train_short
from desktop_trainer.evaluation import ort_logits, ort_session
from desktop_trainer.finalize import stacked
from desktop_trainer.train import build_datamodule

WHAT_LATENCY = "int8 ÷ fp32 ORT latency (1 thread)"
WHAT_ACCURACY = "top-1 accuracy drop fp32 - int8 (test split, points)"


def test_batch(info: dict, data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The run's test split as (inputs, targets), rebuilt from its saved config."""
    cfg = OmegaConf.create(info["metrics"]["config"])
    with tempfile.TemporaryDirectory(prefix="bench-p5-") as tmp:
        cfg.data.source, cfg.data.cache_dir, cfg.data.progress = str(data), f"{tmp}/cache", False
        dm = build_datamodule(cfg)
        dataset = dm.eval_dataset("test")
        return stacked(dataset), np.asarray(dataset.targets())


def measure(info: dict, data: Path, runs: int) -> list[dict]:
    """Latency ratio and accuracy difference; returns two figures."""
    run_dir = info["dir"]
    inputs, targets = test_batch(info, data)
    acc = {}
    for name in ("model.onnx", "model.int8.onnx"):
        logits = ort_logits(ort_session(str(run_dir / name), threads=2), inputs)
        acc[name] = float((logits.argmax(1) == targets).mean())
    sessions = {name: ort_session(str(run_dir / name), threads=1) for name in ("model.onnx", "model.int8.onnx")}
    x = inputs[:1]
    samples = interleave(
        {name: (lambda s=s: s.run(None, {s.get_inputs()[0].name: x}) and None) for name, s in sessions.items()},
        runs,
        warmup=3,
    )
    fp32_ms, int8_ms = median_ms(samples["model.onnx"]), median_ms(samples["model.int8.onnx"])
    drop = (acc["model.onnx"] - acc["model.int8.onnx"]) * 100.0
    sizes = {name: (run_dir / name).stat().st_size for name in sessions}
    trainer = info["metrics"]
    common = [describe(info), f"test split: {len(targets)} images of {data}"]
    latency = figure(
        "P5a",
        WHAT_LATENCY,
        ("int8", int8_ms, "ms"),
        ("fp32", fp32_ms, "ms"),
        int8_ms / fp32_ms,
        None,
        [
            *common,
            f"model files: fp32 {sizes['model.onnx'] / 1e6:.1f} MB, int8 "
            f"{sizes['model.int8.onnx'] / 1e6:.1f} MB; {runs} alternating runs each",
        ],
        {"fp32_ms": samples["model.onnx"], "int8_ms": samples["model.int8.onnx"], "sizes": sizes},
    )
    accuracy = figure(
        "P5b",
        WHAT_ACCURACY,
        ("fp32", round(acc["model.onnx"] * 100, 2), "%"),
        ("int8", round(acc["model.int8.onnx"] * 100, 2), "%"),
        None,
        "<= 1",
        [
            *common,
            f"the trainer's own figures for this run: fp32 {trainer['test']['accuracy']:.4f}, "
            f"int8 {trainer['int8']['test']['accuracy']:.4f}",
        ],
        {"accuracy": acc, "run_dir": str(run_dir)},
        value=round(drop, 2),
    )
    return [latency, accuracy]


def main(argv: list[str] | None = None) -> int:
    """Run P5 and print the figures."""
    p = parser(__doc__)
    p.add_argument("--model-dir", type=Path, default=None, help="a run dir with model.onnx, model.int8.onnx, metrics")
    args = p.parse_args(argv)
    data = data_path(args.data)
    info = run_info(args.model_dir) if args.model_dir else find_run(data)
    if args.model_dir and info is None:
        raise SystemExit(
            f"{args.model_dir} is not a complete baseline run dir (model.onnx, model.int8.onnx, "
            f"metrics.json with int8 results)"
        )
    if info is None and args.quick:
        emit(
            [
                skipped(
                    "P5",
                    WHAT_ACCURACY,
                    "no trained baseline run under outputs/ and --quick does not train one "
                    "(give --model-dir or run without --quick)",
                )
            ],
            args.out,
        )
        return 0
    info = info or train_short(data)
    log(f"P5: {describe(info)}")
    emit(measure(info, data, 10 if args.quick else 40), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
