"""P11: anomaly mode (issue 13). Magnetic tile and synthetic welds, trained on good parts only.

    .venv/bin/python bench/p11_anomaly.py [--data DIR] [--mt-run DIR] [--weld-run DIR] [--skip-mt] [--skip-welds]
                                          [--fresh-per-label 40] [--classifier var/demo/train/model.onnx] [--out FILE]

Magnetic tile (``--data`` / $RDK_BENCH_DATA, read in place): ``+experiment=anomaly`` on the folder
(``data.glob=*.jpg``; masks ``<stem>.png`` beside each image), or an existing run with ``--mt-run``. The
trainer's test-split figures (PyTorch) are read from its metrics.json; the same figures are then
measured from model.onnx through the agent (``OnnxAnomalyModel``: decode, shared preprocessing, ORT) on
the same test split (a function of the sample names), with the maps taken back onto each frame for the
pixel AUROC. Goals: image AUROC >= 0.95, pixel AUROC >= 0.90, agent within 0.005 of the trainer, <= 0.5 GMAC.

Synthetic welds: a class folder of rendered frames (``good`` plus a few of each defect label for the
threshold on val) is fitted on ``good`` only; then fresh frames of all five labels (another seed) give
the image AUROC (good vs any defect, and per defect label), and pass/fail accuracy of the anomaly
model at its threshold next to the classifier's (``--classifier``, the demo's trained weld model, when
present) and the rules' (default rubric), on the same frames.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import OUT_DIR, REPO, data_path, emit, figure, log, parser
from desktop_trainer.anomaly.evaluate import auroc, figures, score_samples
from desktop_trainer.data.datamodule import WeldDataModule
from rdk_agent.camera.synthetic import LABELS, SyntheticWeldGenerator
from rdk_agent.inspection.anomaly_model import OnnxAnomalyModel
from rdk_agent.inspection.onnx_model import OnnxClassifier
from rdk_agent.inspection.rubric import Rubric
from rdk_agent.inspection.rules import RuleEvaluator
from shared_schema import LabelSchema, default_weld_schema, read_model_card

CONFIG_DIR = REPO / "desktop_trainer" / "configs"


def train(out: Path, source: Path, *overrides: str) -> dict:
    """``python -m desktop_trainer +experiment=anomaly`` into ``out``; its metrics.json."""
    cmd = [sys.executable, "-m", "desktop_trainer", "+experiment=anomaly", f"data.source={source}"]
    cmd += [f"paths.output_dir={out}", "data.progress=false", f"hydra.run.dir={out}", *overrides]
    log("P11: " + " ".join(cmd[1:]))
    started = time.time()
    subprocess.run(cmd, cwd=REPO, check=True)
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["bench_wall_s"] = round(time.time() - started, 1)
    return metrics


def test_split(run_dir: Path) -> tuple[dict, WeldDataModule]:
    """The run's config (metrics.json) and its data module rebuilt from it: the same split and contract."""
    config = json.loads((run_dir / "metrics.json").read_text())["config"]
    data = {k: v for k, v in config["data"].items() if not k.startswith("_")}
    data.update(backbone=config["model"]["backbone"], cache_dir=str(run_dir / "cache"), progress=False, augment=[])
    return config, WeldDataModule.from_sources(**data)


def agent_latency_ms(model: OnnxAnomalyModel, frame: np.ndarray, runs: int = 20) -> float:
    """Median wall time of ``predict`` (preprocess + ORT + normalise + peak) on one frame."""
    model.predict(frame)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        model.predict(frame)
        times.append((time.perf_counter() - started) * 1000.0)
    return round(float(np.median(times)), 2)


def magnetic_tile(args) -> list[dict]:
    """Trainer figures and the same figures from model.onnx through the agent."""
    run_dir = args.mt_run or (OUT_DIR / "p11" / "magnetic_tile")
    if not (run_dir / "metrics.json").is_file():
        train(run_dir, data_path(args.data), "data.glob=*.jpg", *args.set)
    trainer = json.loads((run_dir / "metrics.json").read_text())
    config, dm = test_split(run_dir)
    schema = dm.dataset.schema
    model = OnnxAnomalyModel.from_file(run_dir / "model.onnx", schema, intra_op_threads=2)
    defect_labels = {lab.name for lab in schema.labels if lab.is_defect}
    scorer = lambda batch: model.run_raw(batch)  # noqa: E731 - the agent's session, on the shared preprocessing
    scored = score_samples(
        scorer, list(dm.split.test), model.card.input, defect_labels, config["anomaly"]["mask_suffix"]
    )
    agent = figures(scored, model.settings.image)
    frame = cv2.imread(str(dm.split.test[0].rgb_path))
    latency = {
        t: agent_latency_ms(OnnxAnomalyModel.from_file(run_dir / "model.onnx", schema, t), frame) for t in (1, 4)
    }
    t, macs = trainer["test"], trainer["model"]["macs"]
    notes = [
        f"fitted on {trainer['split']['fit_good']} good tiles; test {t['images']} tiles ({t['defects']} defects), "
        f"val {trainer['split']['val']}; {trainer['model']['input']}, layers {trainer['model']['layers']}, "
        f"memory bank {trainer['model']['memory_bank']}",
        f"trainer (PyTorch): image AUROC {t['image_auroc']}, pixel AUROC {t['pixel_auroc']}, accuracy {t['accuracy']}",
        f"agent (ONNX, OnnxAnomalyModel): image AUROC {agent['image_auroc']}, pixel AUROC {agent['pixel_auroc']}",
        f"{macs / 1e9:.3f} GMAC; agent predict median {latency[1]} ms at 1 thread, {latency[4]} ms at 4 threads; "
        f"threshold rule {trainer['anomaly']['threshold_rule']}",
    ]
    details = {"trainer": t, "agent": agent, "latency_ms": latency, "macs": macs, "run_dir": str(run_dir)}
    return [
        figure(
            "P11-mt-image",
            "magnetic tile image AUROC (agent)",
            ("AUROC", agent["image_auroc"], ""),
            None,
            None,
            ">= 0.95",
            notes,
            details,
            value=agent["image_auroc"],
        ),
        figure(
            "P11-mt-pixel",
            "magnetic tile pixel AUROC (agent)",
            ("AUROC", agent["pixel_auroc"], ""),
            None,
            None,
            ">= 0.90",
            [],
            {},
            value=agent["pixel_auroc"],
        ),
        figure(
            "P11-mt-parity",
            "|agent - trainer| AUROC, image and pixel",
            ("max |Δ|", 0.0, ""),
            None,
            None,
            "<= 0.005",
            [],
            {},
            value=round(
                max(abs(agent["image_auroc"] - t["image_auroc"]), abs(agent["pixel_auroc"] - t["pixel_auroc"])), 4
            ),
        ),
        figure(
            "P11-mt-macs",
            "anomaly model MACs",
            ("GMAC", round(macs / 1e9, 3), "GMAC"),
            None,
            None,
            "<= 0.5",
            [],
            {},
            value=round(macs / 1e9, 3),
        ),
    ]


def write_weld_folder(root: Path, good: int, per_defect: int, seed: int) -> Path:
    """root/<label>/*.png rendered frames (RGB only): ``good`` good frames, ``per_defect`` of each defect."""
    gen = SyntheticWeldGenerator(seed=seed)
    for label in LABELS:
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(good if label == "good" else per_defect):
            cv2.imwrite(str(folder / f"{label}_{i:04d}.png"), gen.generate(label).rgb)
    return root


def welds(args) -> list[dict]:
    """Fit on good frames, score fresh frames of all labels; pass/fail next to the classifier and the rules."""
    run_dir = args.weld_run or (OUT_DIR / "p11" / "welds")
    if not (run_dir / "metrics.json").is_file():
        with tempfile.TemporaryDirectory(prefix="p11-welds-") as tmp:
            source = write_weld_folder(Path(tmp), args.weld_good, args.weld_defects, seed=7)
            train(run_dir, source, "data.glob=*.png", f"data.labels=[{','.join(LABELS)}]", *args.set)
    schema = default_weld_schema()
    card = read_model_card(run_dir / "model.onnx")  # the folder source's schema: the weld labels, no key bindings
    model = OnnxAnomalyModel.from_file(run_dir / "model.onnx", LabelSchema.from_dict(card.label_schema or {}), 2)
    classifier = None
    if args.classifier and Path(args.classifier).is_file():
        classifier = OnnxClassifier.from_file(args.classifier, schema, intra_op_threads=2)
    rules = RuleEvaluator(Rubric.from_dict({}), schema)
    gen = SyntheticWeldGenerator(seed=1000 + args.seed)
    rows = []
    for _ in range(args.fresh_per_label):
        for label in LABELS:
            frame = gen.generate(label)
            pred = model.predict(frame.rgb)
            row = {
                "label": label,
                "raw": pred.raw_score,
                "anomalous": pred.anomalous,
                "rules_pass": rules.evaluate(frame.rgb, frame.depth).label == "good",
            }
            if classifier is not None:
                row["classifier_pass"] = classifier.predict(frame.rgb, frame.depth).label == "good"
            rows.append(row)
    truth = np.array([r["label"] != "good" for r in rows])
    raw = np.array([r["raw"] for r in rows])
    per_label = {
        lab: auroc(raw[[r["label"] in ("good", lab) for r in rows]], truth[[r["label"] in ("good", lab) for r in rows]])
        for lab in LABELS[1:]
    }
    passfail = {
        "anomaly": float(np.mean([r["anomalous"] == t for r, t in zip(rows, truth, strict=True)])),
        "rules": float(np.mean([(not r["rules_pass"]) == t for r, t in zip(rows, truth, strict=True)])),
    }
    if classifier is not None:
        passfail["classifier"] = float(
            np.mean([(not r["classifier_pass"]) == t for r, t in zip(rows, truth, strict=True)])
        )
    image_auroc = auroc(raw, truth)
    trainer = json.loads((run_dir / "metrics.json").read_text())
    notes = [
        f"fitted on {trainer['split']['fit_good']} good frames; fresh frames: {args.fresh_per_label} per label "
        f"(seed {1000 + args.seed}), 640x480; {trainer['model']['input']}, {trainer['model']['macs'] / 1e9:.3f} GMAC",
        f"image AUROC good vs any defect {image_auroc:.4f}; per label "
        + ", ".join(f"{k} {v:.4f}" for k, v in per_label.items()),
        "pass/fail accuracy (pass = good): "
        + ", ".join(f"{k} {v:.3f}" for k, v in passfail.items())
        + ("" if classifier is not None else " (no classifier file: --classifier)"),
    ]
    return [
        figure(
            "P11-welds",
            "synthetic welds image AUROC (good only fit)",
            ("AUROC", round(image_auroc, 4), ""),
            None,
            None,
            None,
            notes,
            {"per_label": per_label, "pass_fail": passfail, "run_dir": str(run_dir)},
            value=round(image_auroc, 4),
        )
    ]


def main(argv: list[str] | None = None) -> int:
    """Run P11 and print the figures."""
    p = parser(__doc__)
    p.add_argument(
        "--mt-run", type=Path, default=None, help="magnetic-tile run dir: reused when it holds a run, else trained into"
    )
    p.add_argument(
        "--weld-run",
        type=Path,
        default=None,
        help="synthetic-weld run dir: reused when it holds a run, else trained into",
    )
    p.add_argument("--skip-mt", action="store_true")
    p.add_argument("--skip-welds", action="store_true")
    p.add_argument("--weld-good", type=int, default=160, help="good frames rendered for fitting and val/test")
    p.add_argument("--weld-defects", type=int, default=12, help="frames per defect label (val/test only)")
    p.add_argument("--fresh-per-label", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], help="extra trainer override KEY=VALUE (repeatable)")
    p.add_argument("--classifier", default=str(REPO / "var" / "demo" / "train" / "model.onnx"))
    args = p.parse_args(argv)
    out = [] if args.skip_mt else magnetic_tile(args)
    if not args.skip_welds:
        out += welds(args)
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
