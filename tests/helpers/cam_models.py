"""A tiny real ONNX classifier with class activation maps (a ``cam`` output), built with onnx.helper.

input N x C x H x W -> AveragePool(cell x cell) -> Conv 1x1 (W) = cam N x K x (H/cell) x (W/cell);
logits = GlobalAveragePool(cam) + b. Class ``dominant`` weighs every channel +1 and the others -1, so
its map peaks on the brightest cell of the input, and its bias ``margin`` makes it win: a bright spot
in a frame must come back as the heat map's peak, wherever the preprocessing put it. With ``fine`` the
graph also outputs ``cam_fine``, the same weights on half-size cells, and the card places both grids.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from shared_schema import METADATA_KEY, InputContract, LabelSchema, ModelCard, default_weld_schema

OPSET = 17


def cam_card(
    schema: LabelSchema | None = None,
    *,
    height: int = 32,
    width: int = 32,
    channels: str = "rgb",
    cam: bool = True,
    fine: bool = False,
    cell: int = 8,
    **contract_fields,
) -> ModelCard:
    """The card of :func:`cam_model_bytes`; ``cam=False`` leaves ``extra_outputs`` empty (an older card)."""
    schema = schema or default_weld_schema()
    n = 4 if channels == "rgbd" else 3
    contract = InputContract(
        height=height, width=width, channels=channels, mean=(0.5,) * n, std=(0.25,) * n, **contract_fields
    )
    return ModelCard(
        labels=tuple(schema.names),
        label_schema_hash=schema.hash,
        input=contract,
        name="tiny-cam-classifier",
        architecture="pool-conv1x1 cam (test)",
        provenance={
            "dataset_id": "test",
            "heatmap": {
                "grid": {"stride": [cell, cell], "offset": [cell / 2, cell / 2]},
                "fine_grid": {"stride": [cell // 2, cell // 2], "offset": [cell / 4, cell / 4]},
            },
        },
        extra_outputs=({"cam": "cam"} | ({"cam_fine": "cam_fine"} if fine else {})) if cam else {},
    )


def cam_model_bytes(card: ModelCard, *, cell: int = 8, dominant: str = "porosity", margin: float = 8.0) -> bytes:
    """The model for ``card`` (input divisible by ``cell``); the graph always outputs ``cam`` and ``cam_fine``."""
    c, k = card.input.num_channels, len(card.labels)
    index = card.labels.index(dominant)
    weight = -np.ones((k, c, 1, 1), np.float32)
    weight[index] = 1.0
    bias = np.zeros(k, np.float32)
    bias[index] = margin
    name = card.input.tensor_name
    nodes = [
        helper.make_node("AveragePool", [name], ["pooled"], kernel_shape=[cell, cell], strides=[cell, cell]),
        helper.make_node("Conv", ["pooled", "W"], ["cam"]),
        helper.make_node("GlobalAveragePool", ["cam"], ["cam_mean"]),
        helper.make_node("Flatten", ["cam_mean"], ["flat"], axis=1),
        helper.make_node("Add", ["flat", "B"], [card.output_name]),
        helper.make_node("AveragePool", [name], ["pooled_fine"], kernel_shape=[cell // 2] * 2, strides=[cell // 2] * 2),
        helper.make_node("Conv", ["pooled_fine", "W"], ["cam_fine"]),
    ]
    h, w = card.input.height // cell, card.input.width // cell
    graph = helper.make_graph(
        nodes,
        "tiny_cam_classifier",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", c, card.input.height, card.input.width])],
        [
            helper.make_tensor_value_info(card.output_name, TensorProto.FLOAT, ["batch", k]),
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["batch", k, h, w]),
            helper.make_tensor_value_info("cam_fine", TensorProto.FLOAT, ["batch", k, 2 * h, 2 * w]),
        ],
        initializer=[numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rdk-tests")
    model.ir_version = 8
    helper.set_model_props(model, {METADATA_KEY: card.to_json()})
    onnx.checker.check_model(model)
    return model.SerializeToString()
