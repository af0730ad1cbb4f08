"""The last step: report/ (plots and summary.md), metrics.json, and the closing message with the deploy command."""

from __future__ import annotations

import json
from pathlib import Path

from desktop_trainer import report
from desktop_trainer.finalize.context import FinalizeContext


def write_report(ctx: FinalizeContext) -> dict[str, str]:
    """report/: confusion matrix, misclassified test images and their Grad-CAM, curves, summary.md."""
    rep = ctx.out_dir / "report"
    rep.mkdir(exist_ok=True)
    metrics, labels = ctx.metrics, ctx.dm.labels
    logits, targets, test = ctx.results["test"]
    if test.get("count"):
        report.plot_confusion(test["confusion_matrix"], labels, rep / "confusion_matrix.png", "test split")
    metrics["test"]["misclassified"] = report.plot_misclassified(
        ctx.dm.split.test,
        logits,
        targets,
        labels,
        rep / "misclassified.png",
        temperature=metrics["calibration"]["temperature"],
    )
    report.plot_gradcam(ctx.net, ctx.dm.split.test, logits, targets, labels, ctx.dm.contract, rep / "gradcam.png")
    csvs = sorted(ctx.out_dir.glob("logs/**/metrics.csv"))
    report.plot_curves(csvs[-1] if csvs else None, rep / "curves.png")
    report.write_summary(metrics, rep / "summary.md")
    return {"report": str(rep)}


def write_metrics(ctx: FinalizeContext) -> dict[str, str]:
    """metrics.json: everything measured, and the run's configuration."""
    path = ctx.out_dir / "metrics.json"
    path.write_text(json.dumps(ctx.metrics, indent=2, default=str), encoding="utf-8")
    return {"metrics": str(path)}


def print_closing(paths: dict, metrics: dict) -> None:
    """Print where everything is and the exact command to ship the model."""
    test = metrics["test"]
    print("\n=== desktop_trainer: done ===")
    print(
        f"test accuracy {test.get('accuracy', 0):.4f}  macro-F1 {test.get('macro_f1', 0):.4f}  "
        f"ORT 1-thread {metrics['latency']['fp32']['median_ms']} ms  MACs {metrics['model']['macs'] / 1e6:.1f} M"
    )
    cal = metrics["calibration"]
    thresholds = {k: cal["thresholds"][k]["threshold"] for k in ("confidence", "review")}
    print(
        f"calibration: T {cal['temperature']:.3f}, test ECE {cal['test']['before'].get('ece')} -> "
        f"{cal['test']['after'].get('ece')}; card thresholds confidence {thresholds['confidence']}, "
        f"review {thresholds['review']}"
    )
    if cal["thresholds"]["note"]:
        print(f"  {cal['thresholds']['note']}")
    for name, path in paths.items():
        print(f"{name:>11}: {path}")
    print(f"\nShip it:\n  make deploy-model RDK_HOST=<user@board> MODEL={Path(paths['model']).resolve()}\n")
