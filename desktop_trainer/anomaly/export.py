"""ONNX export of the anomaly model (score and map outputs, card embedded) and its PyTorch parity gate."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from desktop_trainer.anomaly.evaluate import Scorer
from desktop_trainer.anomaly.model import PatchCoreModel
from desktop_trainer.evaluation import ort_session
from desktop_trainer.export.onnx_export import ParityError, write_onnx
from shared_schema import ModelCard
from shared_schema.anomaly import MAP_ROLE


def export_anomaly_onnx(model: PatchCoreModel, card: ModelCard, path: str | Path) -> Path:
    """Export ``model`` (CPU, fp32, dynamic batch) with outputs ``card.output_name`` and the map, and embed ``card``."""
    net = copy.deepcopy(model).cpu().float().eval()
    return write_onnx(net, card, [card.output_name, card.extra_outputs[MAP_ROLE]], Path(path))


def ort_scorer(session: ort.InferenceSession, card: ModelCard) -> Scorer:
    """A Scorer running the exported model in ONNX Runtime."""
    outputs = [card.output_name, card.extra_outputs[MAP_ROLE]]

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        score, amap = session.run(outputs, {card.input.tensor_name: batch})
        return score, amap[:, 0]

    return run


@torch.no_grad()
def check_parity(model: PatchCoreModel, path: str | Path, card: ModelCard, batch: np.ndarray, rtol: float) -> dict:
    """ORT against PyTorch on ``batch``: ParityError when a score or map value differs by more than
    ``rtol`` times the batch's largest PyTorch score."""
    net = copy.deepcopy(model).cpu().float().eval()
    t_score, t_map = net(torch.from_numpy(batch))
    o_score, o_map = ort_scorer(ort_session(str(path), threads=2), card)(batch)
    scale = max(float(t_score.abs().max()), 1e-6)
    score_diff = float(np.abs(t_score.numpy() - o_score).max())
    map_diff = float(np.abs(t_map[:, 0].numpy() - o_map).max())
    report = {"images": len(batch), "max_abs_diff_score": score_diff, "max_abs_diff_map": map_diff, "scale": scale}
    if max(score_diff, map_diff) > rtol * scale:
        raise ParityError(
            f"ONNX export of {path} does not match PyTorch: max |Δscore| {score_diff:.2e}, |Δmap| {map_diff:.2e} "
            f"(allowed {rtol:g} x {scale:.3g})"
        )
    return report
