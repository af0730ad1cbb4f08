"""ONNX export with the model card in the metadata, and the PyTorch-vs-ONNX-Runtime parity gate.

A network with a global-pooling + linear head is exported with a second output, ``cam`` (class
activation maps, N x K x h x w, see ``desktop_trainer.models.cam``), named in the card's
``extra_outputs`` under the role ``cam``; the logits stay the first output. Where the cells lie on the
input (``cam_grid``) goes to ``provenance["heatmap"]["grid"]``, which the agent reads. A network trained
with an auxiliary stride-16 head (``models.aux_head``) also outputs that head's maps, ``cam_fine``
(role ``cam_fine``, cells in ``provenance["heatmap"]["fine_grid"]``). Any other head is exported
with the logits only, and the card's provenance says why there is no map.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from desktop_trainer.evaluation import ort_logits, ort_session
from desktop_trainer.models.aux_head import stage_blocks
from desktop_trainer.models.cam import CamUnavailable, WithCam, cam_grid
from shared_schema import METADATA_KEY, ModelCard

OPSET = 17
CAM_OUTPUT = "cam"
FINE_OUTPUT = "cam_fine"
CAM_OUTPUTS = (CAM_OUTPUT, FINE_OUTPUT)


class ParityError(RuntimeError):
    """The exported model does not reproduce PyTorch's outputs."""


def export_onnx(model: nn.Module, card: ModelCard, path: str | Path, cam: bool = True) -> Path:
    """Export ``model`` (eval mode, CPU, fp32) with a dynamic batch and embed ``card``.

    With ``cam`` and a pooling + linear head, the graph also outputs the class maps ``cam`` and the
    embedded card names it (``extra_outputs["cam"]``); otherwise the card names no cam. When ``model``
    has an auxiliary stride-16 head, the graph also outputs its maps ``cam_fine`` (``extra_outputs["cam_fine"]``).
    """
    path = Path(path)
    net = copy.deepcopy(model).cpu().float().eval()
    extra = {role: name for role, name in card.extra_outputs.items() if role not in ("cam", "cam_fine")}
    provenance = {k: v for k, v in card.provenance.items() if k != "heatmap"}
    outputs = [card.output_name]
    if cam:
        try:
            wrapped = WithCam(net).eval()
            heatmap = {"cam": CAM_OUTPUT, "layer": "last feature map"}
            heatmap["grid"] = cam_grid(wrapped, card.input.height, card.input.width)
            extra["cam"] = CAM_OUTPUT
            outputs.append(CAM_OUTPUT)
            if wrapped.aux is not None:
                block = stage_blocks(net)[wrapped.aux.index]
                heatmap["fine_grid"] = cam_grid(wrapped, card.input.height, card.input.width, block)
                heatmap["cam_fine"] = FINE_OUTPUT
                heatmap["fine_layer"] = f"auxiliary head on feature block {wrapped.aux.index} (stride 16)"
                extra["cam_fine"] = FINE_OUTPUT
                outputs.append(FINE_OUTPUT)
            net = wrapped
            provenance["heatmap"] = heatmap
        except CamUnavailable as exc:
            provenance["heatmap"] = {"cam": None, "reason": str(exc)}
    else:
        provenance["heatmap"] = {"cam": None, "reason": "exported without class maps (cam=False)"}
    card = dataclasses.replace(card, extra_outputs=extra, provenance=provenance)
    return write_onnx(net, card, outputs, path)


def write_onnx(net: torch.nn.Module, card: ModelCard, outputs: list[str], path: Path) -> Path:
    """Trace ``net`` (CPU, fp32, eval) to ONNX at ``path`` with the card's input, ``outputs`` and a dynamic
    batch, then embed ``card``."""
    dummy = torch.zeros(2, card.input.num_channels, card.input.height, card.input.width)
    torch.onnx.export(
        net,
        (dummy,),
        str(path),
        dynamo=False,
        opset_version=OPSET,
        input_names=[card.input.tensor_name],
        output_names=outputs,
        dynamic_axes={card.input.tensor_name: {0: "batch"}, **{name: {0: "batch"} for name in outputs}},
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
    """Compare ORT and PyTorch logits on ``batch``; raise ParityError beyond ``atol`` or on any top-1 change.

    The ``cam`` and ``cam_fine`` outputs are compared too, on up to 16 images, with ``atol`` scaled by
    each map's largest magnitude (class maps are sums over positions, so their values run larger than the logits).
    """
    net = copy.deepcopy(model).cpu().float().eval()
    session = ort_session(str(path), threads=2)
    torch_logits = np.concatenate([net(torch.from_numpy(batch[i : i + 64])).numpy() for i in range(0, len(batch), 64)])
    onnx_logits = ort_logits(session, batch)
    diff = float(np.abs(torch_logits - onnx_logits).max())
    top1_changes = int((torch_logits.argmax(1) != onnx_logits.argmax(1)).sum())
    report = {"images": len(batch), "max_abs_diff": diff, "atol": atol, "top1_mismatches": top1_changes}
    if diff > atol or top1_changes:
        raise ParityError(
            f"ONNX export of {path} does not match PyTorch: max |Δlogit| {diff:.2e} (allowed {atol:.0e}), "
            f"{top1_changes} of {len(batch)} images change their top-1 class"
        )
    names = [o.name for o in session.get_outputs()]
    if CAM_OUTPUT in names:
        report.update(_cam_parity(net, session, batch[:16], atol, path, [n for n in names if n in CAM_OUTPUTS]))
    return report


def _cam_parity(net: nn.Module, session, batch: np.ndarray, atol: float, path: str | Path, names: list[str]) -> dict:
    """ORT's class maps (``names``, in WithCam's output order) against PyTorch's; ParityError beyond
    ``atol`` x a map's largest magnitude."""
    torch_maps = WithCam(net).eval()(torch.from_numpy(batch))[1:]
    onnx_maps = session.run(names, {session.get_inputs()[0].name: batch})
    report = {}
    for name, torch_map, onnx_map in zip(names, torch_maps, onnx_maps, strict=True):
        scale = max(1.0, float(np.abs(torch_map.numpy()).max()))
        diff = float(np.abs(torch_map.numpy() - onnx_map).max())
        if diff > atol * scale:
            raise ParityError(
                f"ONNX {name} of {path} does not match PyTorch: max |Δ{name}| {diff:.2e} "
                f"(allowed {atol:.0e} x {scale:.1f})"
            )
        report[name] = {"images": len(batch), "shape": list(onnx_map.shape[1:]), "max_abs_diff": diff, "scale": scale}
    return report
