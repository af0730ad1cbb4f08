"""The exporters: one function per artefact, ``(context, **settings) -> {artefact name: path}``.

``export.exporters`` lists them in the order they run, as partial ``_target_`` nodes whose other
keys are the settings. Each reads what it needs from the context (the network, the card, the data,
the artefacts written before it), adds its figures to ``context.metrics`` and returns what it wrote.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from desktop_trainer.evaluation import classification_metrics, ort_latency_ms, ort_logits, ort_session
from desktop_trainer.export.bpu import write_bpu_bundle
from desktop_trainer.export.onnx_export import check_parity, export_onnx
from desktop_trainer.export.quantize import quantize_int8
from desktop_trainer.finalize.context import FinalizeContext
from shared_schema import read_model_card
from shared_schema.preprocess import preprocess


def _input_shape(ctx: FinalizeContext) -> tuple[int, int, int]:
    contract = ctx.dm.contract
    return contract.num_channels, contract.height, contract.width


def onnx_model(ctx: FinalizeContext, parity_atol: float, latency_runs: int) -> dict[str, str]:
    """model.onnx with the card embedded, gated on parity with PyTorch on the val split (ParityError
    beyond ``parity_atol`` or on any top-1 change); ORT latency at 1 thread."""
    path = export_onnx(ctx.net, ctx.card, ctx.out_dir / "model.onnx")
    ctx.card = read_model_card(path)  # as embedded: with the cam output and its grid when the head has one
    ctx.metrics["parity"] = check_parity(ctx.net, path, ctx.batch("val"), atol=parity_atol)
    latency = ort_latency_ms(str(path), _input_shape(ctx), runs=latency_runs)
    ctx.metrics.setdefault("latency", {})["fp32"] = latency
    return {"model": str(path)}


def int8_model(ctx: FinalizeContext, latency_runs: int) -> dict[str, str]:
    """model.int8.onnx: static QDQ quantisation of model.onnx on the calibration set; test metrics and latency."""
    contract = ctx.dm.contract
    calibration = np.stack([preprocess(image, contract, depth) for image, depth in ctx.calibration_images()])
    path = quantize_int8(ctx.artefacts["model"], ctx.out_dir / "model.int8.onnx", calibration)
    logits = ort_logits(ort_session(str(path), threads=2), ctx.batch("test"))
    ctx.metrics["int8"] = {"test": classification_metrics(logits, ctx.results["test"].targets, ctx.dm.labels)}
    ctx.metrics.setdefault("latency", {})["int8"] = ort_latency_ms(str(path), _input_shape(ctx), runs=latency_runs)
    return {"model_int8": str(path)}


def bpu_bundle(ctx: FinalizeContext) -> dict[str, str]:
    """bpu/: the hb_mapper configuration and calibration tensors for the RDK X5 BPU conversion of model.onnx."""
    images = ctx.calibration_images()
    bundle = write_bpu_bundle(ctx.out_dir / "bpu", Path(ctx.artefacts["model"]), ctx.card, images, len(images))
    ctx.metrics["bpu"] = bundle
    return {"bpu": bundle["dir"]}
