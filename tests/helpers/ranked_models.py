"""Colour classifiers whose golden-set quality is known in advance, and the golden captures that rank them.

A golden frame of class ``c`` (one of the first three weld labels) is a noisy image whose RGB channel
``c`` is bright and the others dark. The models are real ONNX files (pool -> linear, built with
onnx.helper) with a model card; they read the channel means the board's own preprocessing gives:

* ``perfect``: class ``c`` from channel ``c``: right on every golden frame;
* ``mediocre``: right on good and porosity, calls spatter good: 2/3 of a balanced golden set;
* ``permuted``: the outputs rotated (channel 0 -> porosity, ...): wrong on every golden frame, the
  model a trainer gives when it learned shuffled labels.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import onnx
import requests
from onnx import TensorProto, helper, numpy_helper

from rdk_agent.storage import CaptureStore
from shared_schema import METADATA_KEY, default_weld_schema
from shared_schema.split import is_test_group
from tests.helpers.onnx_models import OPSET, make_card

SCHEMA = default_weld_schema()
CLASSES = SCHEMA.names[:3]  # good, porosity, spatter
QUALITIES = ("perfect", "mediocre", "permuted")


def _weights(quality: str) -> tuple[np.ndarray, np.ndarray]:
    k = len(SCHEMA.names)
    weight = np.zeros((k, 3), dtype=np.float32)
    bias = np.full(k, -20.0, dtype=np.float32)  # gap and undercut never win
    rows = {"perfect": (0, 1, 2), "mediocre": (0, 1, None), "permuted": (1, 2, 0)}[quality]
    for channel, row in enumerate(rows):
        if row is not None:
            weight[row, channel] = 4.0
            bias[row] = 0.0
    if quality == "mediocre":
        weight[0, 2] = 2.0  # spatter frames are called good (not a noisy tie between good and porosity)
    return weight, bias


def ranked_model_bytes(quality: str, name: str | None = None) -> bytes:
    """A ``quality`` colour classifier (see the module docstring) with a card named ``name``."""
    card = make_card(SCHEMA, name=name or f"colour-{quality}", size=16)
    weight, bias = _weights(quality)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "B"], ["logits"], transB=1),
        ],
        f"colour_{quality}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(SCHEMA.names)])],
        initializer=[numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rdk-tests")
    model.ir_version = 8
    helper.set_model_props(model, {METADATA_KEY: card.to_json()})
    onnx.checker.check_model(model)
    return model.SerializeToString()


def deploy(models_dir: Path, quality: str, name: str | None = None) -> bytes:
    """Put a ``quality`` model in the models dir as rsync does (temp file, rename); its bytes."""
    data = ranked_model_bytes(quality, name)
    tmp = Path(models_dir) / f".model.onnx.{os.getpid()}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, Path(models_dir) / "model.onnx")
    return data


def colour_frame(label: str, rng: np.random.Generator, shape: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A BGR frame of class ``label``: its RGB channel bright, the others dark, with pixel noise."""
    rgb = np.full((*shape, 3), 60.0)
    rgb[..., CLASSES.index(label)] = 200.0
    rgb += rng.normal(0.0, 20.0, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)[..., ::-1].copy()


def groups(test_side: bool, count: int) -> list[str]:
    """``count`` group names on the test side of the stable split (golden) or off it."""
    found = [f"part-{i}" for i in range(2000) if is_test_group(f"part-{i}") == test_side]
    return found[:count]


def fill_golden(store: CaptureStore, per_class: int, seed: int = 0) -> list[str]:
    """Store ``per_class`` labelled golden frames per class (test-side groups); their ids."""
    rng = np.random.default_rng(seed)
    ids = []
    names = groups(True, per_class * len(CLASSES))
    for i, label in enumerate(CLASSES * per_class):
        ids.append(store.add(colour_frame(label, rng), None, label, "test", group=names[i]).id)
    return ids


def upload_golden(agent, per_class: int, seed: int = 3) -> None:
    """POST ``per_class`` labelled frames per class to a running agent, each in a test-side (golden) group."""
    rng = np.random.default_rng(seed)
    names = groups(True, per_class * len(CLASSES))
    for i, label in enumerate(CLASSES * per_class):
        image = cv2.imencode(".png", colour_frame(label, rng))[1].tobytes()
        r = requests.post(
            agent.api("captures"),
            files={"image": ("g.png", image)},
            data={"label": label, "group": names[i]},
            headers=agent.auth,
            timeout=30,
        )
        assert r.status_code == 201 and r.json()["golden"] is True, r.text
