"""Conversion bundle for the RDK X5 BPU: an hb_mapper YAML and a calibration set it can read.

For an RGB model the BPU inserts the normalisation itself (``norm_type: data_mean_and_scale``),
so the calibration files hold resized RGB pixels 0..255 (float32, NCHW, one ``.bin`` per image)
and the YAML carries ``mean = 255·mean`` and ``scale = 1 / (255·std)`` from the model card. An
RGB-D model takes a feature map: calibration files are then the fully preprocessed tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from shared_schema import ModelCard
from shared_schema.preprocess import fit_image, preprocess

MARCH = "bayes-e"


def calibration_tensor(card: ModelCard, image: np.ndarray, depth: np.ndarray | None) -> np.ndarray:
    """One calibration input: resized RGB pixels 0..255 (the BPU normalises) or, for RGB-D, the model's tensor."""
    if card.input.channels == "rgbd":
        return preprocess(image, card.input, depth)[None]
    return fit_image(image, card.input).transpose(2, 0, 1)[None].astype(np.float32)


def hb_mapper_config(card: ModelCard, onnx_name: str, cal_dir: str = "calibration") -> dict:
    """The hb_mapper ``makertbin`` configuration for this model."""
    c = card.input
    if c.channels == "rgb":
        inputs = {
            "input_type_train": c.colour_order,
            "input_type_rt": "nv12",
            "input_layout_train": "NCHW",
            "norm_type": "data_mean_and_scale",
            "mean_value": " ".join(f"{255.0 * m:.4f}" for m in c.mean),
            "scale_value": " ".join(f"{1.0 / (255.0 * s):.6f}" for s in c.std),
        }
    else:
        inputs = {
            "input_type_train": "featuremap",
            "input_type_rt": "featuremap",
            "input_layout_train": "NCHW",
            "input_layout_rt": "NCHW",
            "norm_type": "no_preprocess",
        }
    return {
        "model_parameters": {
            "onnx_model": onnx_name,
            "march": MARCH,
            "working_dir": "model_output",
            "output_model_file_prefix": Path(onnx_name).stem + "_bayes_e",
        },
        "input_parameters": {
            "input_name": c.tensor_name,
            "input_shape": f"1x{c.num_channels}x{c.height}x{c.width}",
            **inputs,
        },
        "calibration_parameters": {
            "cal_data_dir": f"./{cal_dir}",
            "cal_data_type": "float32",
            "calibration_type": "default",
        },
        "compiler_parameters": {"compile_mode": "latency", "optimize_level": "O3", "core_num": 1},
    }


def write_bpu_bundle(
    out_dir: str | Path,
    onnx_path: str | Path,
    card: ModelCard,
    images: Sequence[tuple[np.ndarray, np.ndarray | None]],
    count: int = 200,
) -> dict:
    """Write ``config.yaml``, ``calibration/NNNN.bin`` and a README into ``out_dir``; return a summary."""
    out_dir = Path(out_dir)
    cal_dir = out_dir / "calibration"
    cal_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = Path(onnx_path)
    contract = card.input
    chosen = list(images)[:count]
    for i, (image, depth) in enumerate(chosen):
        calibration_tensor(card, image, depth).astype(np.float32).tofile(cal_dir / f"{i:04d}.bin")
    config = hb_mapper_config(card, f"../{onnx_path.name}")
    (out_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    command = "hb_mapper makertbin --model-type onnx --config config.yaml"
    (out_dir / "README.md").write_text(
        f"# RDK X5 BPU conversion\n\nWith the D-Robotics OpenExplorer toolchain installed, run in this folder:\n\n"
        f"    {command}\n\nCalibration: {len(chosen)} float32 NCHW tensors of shape "
        f"1x{contract.num_channels}x{contract.height}x{contract.width} in calibration/.\n",
        encoding="utf-8",
    )
    return {"dir": str(out_dir), "calibration_images": len(chosen), "command": command}
