"""Human-readable run report: confusion matrix, misclassified images and their Grad-CAM, training curves, summary."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from desktop_trainer.data.dataset import load_sample
from desktop_trainer.data.samples import Sample
from desktop_trainer.data.split import report_lines
from desktop_trainer.models.cam import CamUnavailable, last_block
from shared_schema import InputContract
from shared_schema.postprocess import probabilities
from shared_schema.preprocess import fit_image, preprocess


def plot_confusion(matrix: list[list[int]], labels: Sequence[str], path: Path, title: str) -> None:
    """Confusion matrix heat map, rows = truth, columns = prediction."""
    m = np.asarray(matrix)
    size = 1.2 + 0.7 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color="white" if m[i, j] > m.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_misclassified(
    samples: Sequence[Sample],
    logits: np.ndarray,
    targets: np.ndarray,
    labels: Sequence[str],
    path: Path,
    limit: int = 36,
    temperature: float = 1.0,
) -> int:
    """Grid of wrongly classified images titled true → predicted (calibrated confidence); returns how many are wrong."""
    preds = logits.argmax(1) if len(logits) else np.zeros(0, int)
    wrong = [i for i in range(len(targets)) if preds[i] != targets[i]]
    cols = max(1, min(6, len(wrong)))
    rows = max(1, (min(len(wrong), limit) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    probs = probabilities(logits, temperature) if len(logits) else logits
    for ax, i in zip(axes.flat, wrong[:limit], strict=False):
        image = cv2.imread(str(samples[i].rgb_path), cv2.IMREAD_COLOR)
        if image is not None:
            ax.imshow(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        ax.set_title(f"{labels[targets[i]]} → {labels[preds[i]]}\n{probs[i, preds[i]]:.2f}", fontsize=8)
    if not wrong:
        axes.flat[0].text(0.5, 0.5, "no misclassified test images", ha="center", va="center")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return len(wrong)


def plot_gradcam(
    net: torch.nn.Module,
    samples: Sequence[Sample],
    logits: np.ndarray,
    targets: np.ndarray,
    labels: Sequence[str],
    contract: InputContract,
    path: Path,
    limit: int = 8,
) -> int | None:
    """Grad-CAM (pytorch-grad-cam) of the predicted class on the misclassified images, over the model's input.

    Each tile shows the input as the model saw it (letterboxed or stretched, RGB) with the Grad-CAM of the
    wrong class at the last feature block: what the model took for that class. Returns how many tiles
    were drawn, or None when the network has no known last block (nothing is written).
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    try:
        layer = last_block(net)
    except CamUnavailable:
        return None
    preds = logits.argmax(1) if len(logits) else np.zeros(0, int)
    wrong = [i for i in range(len(targets)) if preds[i] != targets[i]][:limit]
    cols = max(1, min(4, len(wrong)))
    rows = max(1, (len(wrong) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    net = net.eval()
    with GradCAM(model=net, target_layers=[layer]) as cam:
        for ax, i in zip(axes.flat, wrong, strict=False):
            image, depth = load_sample(samples[i], contract.channels == "rgbd")
            x = torch.from_numpy(preprocess(image, contract, depth))[None].requires_grad_()  # frozen layers too
            mask = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(preds[i]))])[0]
            shown = fit_image(image, contract)
            rgb = shown if contract.colour_order == "rgb" else cv2.cvtColor(shown, cv2.COLOR_BGR2RGB)
            ax.imshow(show_cam_on_image(rgb.astype(np.float32) / 255.0, mask, use_rgb=True))
            ax.set_title(f"{labels[targets[i]]} → {labels[preds[i]]}", fontsize=8)
    if not wrong:
        axes.flat[0].text(0.5, 0.5, "no misclassified test images", ha="center", va="center")
    fig.suptitle("Grad-CAM of the predicted (wrong) class", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return len(wrong)


def plot_curves(metrics_csv: Path | None, path: Path) -> bool:
    """Loss and validation metric curves per epoch from the CSV logger; False if there is no log."""
    if metrics_csv is None or not metrics_csv.is_file():
        return False
    series: dict[str, dict[int, float]] = {}
    with open(metrics_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            for key in ("train/loss", "val/loss", "val/acc", "val/f1"):
                if row.get(key):
                    series.setdefault(key, {})[int(row["epoch"])] = float(row[key])
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key, ax in (("train/loss", ax_loss), ("val/loss", ax_loss), ("val/acc", ax_metric), ("val/f1", ax_metric)):
        if key in series:
            epochs = sorted(series[key])
            ax.plot(epochs, [series[key][e] for e in epochs], marker="o", label=key)
    for ax, title in ((ax_loss, "loss"), (ax_metric, "validation")):
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def calibration_lines(calibration: dict) -> list[str]:
    """Summary lines: the temperature, ECE and NLL before → after on val and test, the card's thresholds."""
    where = f"fitted on {calibration['fitted_on']}" if calibration["fitted_on"] else "not fitted"
    if calibration["at_bound"]:
        where += f", at the search's {'lower' if calibration['at_bound'] == 'min' else 'upper'} bound"
    lines = [f"- calibration: temperature {calibration['temperature']:.4g} ({where})"]
    for split in ("val", "test"):
        before, after = calibration[split]["before"], calibration[split]["after"]
        if before.get("count") == 0:
            continue
        lines.append(
            f"  - {split}: ECE (15 bins) {before['ece']:.4f} → {after['ece']:.4f}, "
            f"NLL {before['nll']:.4f} → {after['nll']:.4f}"
        )
    thresholds = calibration["thresholds"]
    for name, key in (("confidence", "confidence_threshold"), ("review", "review_threshold")):
        choice = thresholds[name]
        if choice["threshold"] is None:
            lines.append(f"  - {key}: not set (precision {choice['target_precision']} not reached on val)")
        else:
            lines.append(
                f"  - {key}: {choice['threshold']:.4f} (accepts {choice['accepted']} of {choice['validation_count']} "
                f"val predictions at precision {choice['precision']:.4f}, mean confidence "
                f"{choice['mean_confidence']:.4f}; target {choice['target_precision']})"
            )
    if thresholds["note"]:
        lines.append(f"  - {thresholds['note']}")
    return lines


def write_summary(metrics: dict, path: Path) -> None:
    """A short Markdown summary of the run."""
    test, labels = metrics["test"], metrics["labels"]
    lines = [
        f"# Run summary: {metrics['model']['architecture']}",
        "",
        f"- dataset: {metrics['dataset']['id']} ({metrics['dataset']['samples']} samples, sources: "
        f"{', '.join(metrics['dataset']['sources'])})",
        f"- input: {metrics['model']['input']}, MACs: {metrics['model']['macs'] / 1e6:.1f} M",
        f"- epochs: {metrics['training']['epochs']}, wall time: {metrics['training']['seconds']:.0f} s",
        f"- **test accuracy {test.get('accuracy', 0):.4f}, macro-F1 {test.get('macro_f1', 0):.4f}** "
        f"(val: {metrics['val'].get('accuracy', 0):.4f} / {metrics['val'].get('macro_f1', 0):.4f})",
        f"- ONNX Runtime latency (1 thread): {metrics['latency']['fp32']['median_ms']} ms median",
        *calibration_lines(metrics["calibration"]),
    ]
    if "int8" in metrics:
        q = metrics["int8"]
        lines.append(
            f"- int8: test accuracy {q['test']['accuracy']:.4f}, macro-F1 {q['test']['macro_f1']:.4f}, "
            f"{metrics['latency']['int8']['median_ms']} ms median"
        )
    lines += ["", "| class | train | val | test | precision | recall | F1 |", "|---|---|---|---|---|---|---|"]
    sizes = metrics["split_sizes"]
    for label in labels:
        pc = test.get("per_class", {}).get(label, {})
        lines.append(
            f"| {label} | {sizes['train'][label]} | {sizes['val'][label]} | {sizes['test'][label]} | "
            f"{pc.get('precision', 0):.3f} | {pc.get('recall', 0):.3f} | {pc.get('f1', 0):.3f} |"
        )
    lines += report_lines(metrics["split_groups"], sizes)
    plots = "confusion_matrix.png, misclassified.png, gradcam.png (what the model saw in them), curves.png"
    lines += ["", f"Plots: {plots}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
