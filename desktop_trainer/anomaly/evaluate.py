"""Anomaly figures: image AUROC, pixel AUROC against masks in frame coordinates, thresholds and normalisation.

The same functions score the PyTorch model in the trainer and the ONNX model through the agent's
preprocessing (bench/p11_anomaly.py), so the two sets of figures are comparable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torchmetrics.functional.classification import binary_auroc, binary_precision_recall_curve

from desktop_trainer.data.dataset import load_sample
from desktop_trainer.data.samples import Sample
from shared_schema import InputContract
from shared_schema.anomaly import ScoreScale, map_to_frame
from shared_schema.preprocess import preprocess

# (images N x C x H x W float32) -> (raw scores N, raw maps N x H x W)
Scorer = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
PIXEL_STRIDE = 2  # pixel AUROC on every 2nd row and column of the frame: the same figure, 4x fewer values


def torch_scorer(model: torch.nn.Module) -> Scorer:
    """A Scorer running ``model`` (eval, CPU, no gradients)."""

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            score, amap = model(torch.from_numpy(batch))
        return score.numpy(), amap[:, 0].numpy()

    return run


def mask_of(sample: Sample, suffix: str) -> np.ndarray | None:
    """The ground-truth mask next to the image (``<stem><suffix>``, nonzero = defect), or None."""
    if not suffix:
        return None
    path = Path(sample.rgb_path).with_name(Path(sample.rgb_path).stem + suffix)
    if path == Path(sample.rgb_path) or not path.is_file():
        return None
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return None if mask is None else mask > 0


@dataclass
class Scored:
    """Raw image scores, defect flags, and the pixel values and truths gathered over the frames with masks."""

    scores: np.ndarray
    defect: np.ndarray
    pixel_scores: list[np.ndarray] = field(default_factory=list)
    pixel_truth: list[np.ndarray] = field(default_factory=list)
    peaks: list[tuple[int, int]] = field(default_factory=list)

    def pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """All gathered pixel values and truths, flat."""
        if not self.pixel_scores:
            return np.zeros(0, np.float32), np.zeros(0, bool)
        return np.concatenate(self.pixel_scores), np.concatenate(self.pixel_truth)


def score_samples(
    scorer: Scorer,
    samples: Sequence[Sample],
    contract: InputContract,
    defect_labels: set[str],
    mask_suffix: str = "",
    batch_size: int = 16,
) -> Scored:
    """Run ``scorer`` over ``samples`` with the shared preprocessing; maps go back onto each frame for the masks."""
    scores, maps, frames = [], [], []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        loaded = [load_sample(s, contract.channels == "rgbd") for s in chunk]
        batch = np.stack([preprocess(img, contract, depth) for img, depth in loaded])
        s, m = scorer(batch)
        scores.append(np.asarray(s, dtype=np.float64).reshape(-1))
        maps.extend(np.asarray(m, dtype=np.float32))
        frames.extend(img.shape[:2] for img, _ in loaded)
    defect = np.array([s.label in defect_labels for s in samples], dtype=bool)
    out = Scored(np.concatenate(scores) if scores else np.zeros(0), defect)
    for sample, amap, hw, is_defect in zip(samples, maps, frames, defect, strict=True):
        frame_map = map_to_frame(amap, contract, hw)
        y, x = np.unravel_index(int(np.argmax(frame_map)), frame_map.shape)
        out.peaks.append((int(x), int(y)))
        mask = mask_of(sample, mask_suffix)
        if mask is None and is_defect:
            continue  # a defect without a mask counts for the image figure only
        truth = mask if mask is not None and mask.shape == hw else np.zeros(hw, dtype=bool)
        out.pixel_scores.append(frame_map[::PIXEL_STRIDE, ::PIXEL_STRIDE].ravel())
        out.pixel_truth.append(truth[::PIXEL_STRIDE, ::PIXEL_STRIDE].ravel())
    return out


def _unit(scores: np.ndarray) -> tuple[torch.Tensor, float, float]:
    """Scores min-max scaled into [0, 1] (torchmetrics reads values outside [0, 1] as logits and squashes
    them with a sigmoid, which saturates raw distances); the offset and span to map back."""
    values = np.asarray(scores, dtype=np.float64)
    lo, span = float(values.min()), float(values.max() - values.min()) or 1.0
    return torch.from_numpy(((values - lo) / span).astype(np.float32)), lo, span


def auroc(scores: np.ndarray, truth: np.ndarray) -> float | None:
    """torchmetrics' exact binary AUROC; None when only one class is present."""
    if truth.size == 0 or truth.all() or not truth.any():
        return None
    return float(binary_auroc(_unit(scores)[0], torch.from_numpy(truth.astype(np.int64))))


def f1_threshold(scores: np.ndarray, truth: np.ndarray) -> float:
    """The threshold of the largest F1 (anomalib's F1AdaptiveThreshold), in the scores' own units."""
    unit, lo, span = _unit(scores)
    precision, recall, thresholds = binary_precision_recall_curve(unit, torch.from_numpy(truth.astype(np.int64)))
    if not len(thresholds):
        return float(np.max(scores))
    f1 = 2 * precision * recall / (precision + recall + 1e-12)
    return lo + float(thresholds[int(torch.argmax(f1[:-1]))]) * span


def choose_scale(values: np.ndarray, truth: np.ndarray, good_quantile: float) -> tuple[ScoreScale, str]:
    """Threshold and normalisation range from validation values: F1-best when both classes are present,
    else the ``good_quantile`` quantile of the good values."""
    if truth.any() and not truth.all():
        threshold, rule = f1_threshold(values, truth), "f1_max_on_val"
    else:
        threshold, rule = float(np.quantile(values, good_quantile)), f"good_quantile_{good_quantile:g}_on_val"
    lo, hi = float(np.min(values)), float(np.max(values))
    if hi <= lo:
        hi = lo + 1e-6
    return ScoreScale(threshold=threshold, min=lo, max=hi), rule


def figures(scored: Scored, image: ScoreScale, pixel_auroc: bool = True) -> dict:
    """Image and pixel AUROC, and pass/fail figures at the image threshold."""
    flagged = scored.scores >= image.threshold
    good, bad = ~scored.defect, scored.defect
    out = {
        "images": len(scored.scores),
        "defects": int(bad.sum()),
        "image_auroc": auroc(scored.scores, scored.defect),
        "accuracy": float((flagged == scored.defect).mean()) if len(flagged) else None,
        "good_passed": float((~flagged[good]).mean()) if good.any() else None,
        "defects_flagged": float(flagged[bad].mean()) if bad.any() else None,
    }
    if pixel_auroc:
        values, truth = scored.pixels()
        out["pixel_auroc"] = auroc(values, truth)
        out["pixel_frames"] = len(scored.pixel_scores)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}
