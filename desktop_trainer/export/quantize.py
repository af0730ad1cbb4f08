"""Static int8 (QDQ) quantisation with ONNX Runtime, calibrated on preprocessed training images."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from desktop_trainer.export.onnx_export import embed_card
from shared_schema import read_model_card


class _BatchReader(CalibrationDataReader):
    def __init__(self, name: str, batch: np.ndarray) -> None:
        self.items = iter([{name: batch[i : i + 1]} for i in range(len(batch))])

    def get_next(self) -> dict | None:
        return next(self.items, None)


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, calibration: np.ndarray) -> Path:
    """Write ``int8_path``: QDQ, per-channel int8 weights, uint8 activations; the card says int8."""
    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    card = read_model_card(fp32_path)
    prepared = int8_path.with_suffix(".prep.onnx")
    try:
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(int8_path),
            _BatchReader(card.input.tensor_name, calibration.astype(np.float32)),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    finally:
        prepared.unlink(missing_ok=True)
    embed_card(int8_path, dataclasses.replace(card, precision="int8"))
    return int8_path
