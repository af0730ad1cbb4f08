"""ONNX export with the model card in the metadata, and the PyTorch-vs-ONNX-Runtime parity gate."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from desktop_trainer.evaluation import ort_logits, ort_session
from shared_schema import METADATA_KEY, ModelCard

OPSET = 17


class ParityError(RuntimeError):
    """The exported model does not reproduce PyTorch's outputs."""


def export_onnx(model: nn.Module, card: ModelCard, path: str | Path) -> Path:
    """Export ``model`` (eval mode, CPU, fp32) with a dynamic batch and embed ``card``."""
    path = Path(path)
    net = copy.deepcopy(model).cpu().float().eval()
    dummy = torch.zeros(2, card.input.num_channels, card.input.height, card.input.width)
    torch.onnx.export(
        net,
        (dummy,),
        str(path),
        dynamo=False,
        opset_version=OPSET,
        input_names=[card.input.tensor_name],
        output_names=[card.output_name],
        dynamic_axes={card.input.tensor_name: {0: "batch"}, card.output_name: {0: "batch"}},
    )
    embed_card(path, card)
    return path


def embed_card(path: str | Path, card: ModelCard) -> None:
    """Write ``card`` as JSON into the model's metadata_props under METADATA_KEY (replacing any)."""
    proto = onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    proto.metadata_props.add(key=METADATA_KEY, value=card.to_json())
    proto.producer_name = "desktop_trainer"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


@torch.no_grad()
def check_parity(model: nn.Module, path: str | Path, batch: np.ndarray, atol: float = 1e-4) -> dict:
    """Compare ORT and PyTorch logits on ``batch``; raise ParityError beyond ``atol`` or on any top-1 change."""
    net = copy.deepcopy(model).cpu().float().eval()
    torch_logits = np.concatenate([net(torch.from_numpy(batch[i : i + 64])).numpy() for i in range(0, len(batch), 64)])
    onnx_logits = ort_logits(ort_session(str(path), threads=2), batch)
    diff = float(np.abs(torch_logits - onnx_logits).max())
    top1_changes = int((torch_logits.argmax(1) != onnx_logits.argmax(1)).sum())
    report = {"images": len(batch), "max_abs_diff": diff, "atol": atol, "top1_mismatches": top1_changes}
    if diff > atol or top1_changes:
        raise ParityError(
            f"ONNX export of {path} does not match PyTorch: max |Δlogit| {diff:.2e} (allowed {atol:.0e}), "
            f"{top1_changes} of {len(batch)} images change their top-1 class"
        )
    return report
