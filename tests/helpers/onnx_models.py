"""Tiny real ONNX classifiers with a model card, built with onnx.helper (no torch), for tests.

Every builder writes a genuine ONNX file that ONNX Runtime loads and runs. The valid classifier
pools the image per channel, applies a linear layer and adds a bias, so its output depends on
the input and ``dominant``/``margin`` set how confident it is. The broken variants cover each
reason the agent must refuse or fall back: no card, another schema hash, truncated or random
bytes, an input shape that disagrees with the card, NaN output, and a model slower than a
timeout (a Loop of matrix products).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from shared_schema import METADATA_KEY, InputContract, LabelSchema, ModelCard, default_weld_schema

OPSET = 17
INPUT_SIZE = 32


def make_card(
    schema: LabelSchema | None = None,
    *,
    size: int = INPUT_SIZE,
    channels: str = "rgb",
    schema_hash: str | None = None,
    name: str = "tiny-test-classifier",
    output_kind: str = "logits",
    **card_fields,
) -> ModelCard:
    """A model card for ``schema`` (default: the weld schema) with a ``size`` x ``size`` input.

    ``card_fields`` sets further card fields (``temperature``, ``confidence_threshold``, ...).
    """
    schema = schema or default_weld_schema()
    n = 4 if channels == "rgbd" else 3
    contract = InputContract(
        height=size,
        width=size,
        channels=channels,
        mean=(0.5,) * n,
        std=(0.25,) * n,
    )
    return ModelCard(
        labels=tuple(schema.names),
        label_schema_hash=schema_hash if schema_hash is not None else schema.hash,
        input=contract,
        name=name,
        architecture="pool-linear (test)",
        output_kind=output_kind,
        provenance={"dataset_id": "test", "samples": 0, "epochs": 0, "code_version": "tests"},
        metrics={},
        **card_fields,
    )


def _bias(labels: int, dominant: int, margin: float) -> np.ndarray:
    bias = np.zeros(labels, dtype=np.float32)
    bias[dominant] = margin
    return bias


def _classifier_graph(
    card: ModelCard,
    *,
    graph_size: int | None = None,
    dominant: int = 0,
    margin: float = 8.0,
    nan_output: bool = False,
    nan_on_dark: bool = False,
    slow_iterations: int = 0,
    slow_dim: int = 192,
) -> onnx.ModelProto:
    """input NxCxHxW -> GlobalAveragePool -> Flatten -> Gemm(W, b) [-> + 0 * loop] -> logits NxK."""
    c = card.input.num_channels
    size = graph_size or card.input.height
    k = len(card.labels)
    rng = np.random.default_rng(7)
    weight = (rng.standard_normal((k, c)) * 0.5).astype(np.float32)
    bias = _bias(k, dominant, margin)
    if nan_output:
        bias[:] = np.nan
    inits = [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")]
    nodes = [
        helper.make_node("GlobalAveragePool", [card.input.tensor_name], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "B"], ["linear"], transB=1),
    ]
    out_name = card.output_name
    if slow_iterations:
        nodes += _slow_loop_nodes(inits, slow_iterations, slow_dim)
        nodes.append(helper.make_node("Add", ["linear", "slow_zero"], [out_name]))
    elif nan_on_dark:
        # + 0 * log(mean(x) + 1): finite for mid-grey, NaN once the normalised mean drops below -1
        # (frames darker than about 64/255 under the card's mean 0.5 / std 0.25).
        inits += [
            numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        ]
        nodes += [
            helper.make_node("ReduceMean", ["flat"], ["brightness"], keepdims=0),
            helper.make_node("Add", ["brightness", "one"], ["shifted"]),
            helper.make_node("Log", ["shifted"], ["log_term"]),
            helper.make_node("Mul", ["log_term", "zero"], ["nan_or_zero"]),
            helper.make_node("Add", ["linear", "nan_or_zero"], [out_name]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["linear"], [out_name]))
    graph = helper.make_graph(
        nodes,
        "tiny_classifier",
        [helper.make_tensor_value_info(card.input.tensor_name, TensorProto.FLOAT, ["batch", c, size, size])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch", k])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rdk-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _slow_loop_nodes(inits: list, iterations: int, dim: int) -> list:
    """A Loop of ``iterations`` tanh(state @ M) steps seeded from the input, scaled by zero.

    The state depends on the input so no optimiser can fold it away, and each iteration is a
    separate node run, so ORT's terminate flag can stop it between steps.
    """
    m = (np.eye(dim, dtype=np.float32) * 0.9).astype(np.float32)
    inits += [
        numpy_helper.from_array(m, "M"),
        numpy_helper.from_array(np.array(iterations, dtype=np.int64), "trip"),
        numpy_helper.from_array(np.array(True), "cond"),
        numpy_helper.from_array(np.ones((dim, dim), dtype=np.float32), "ones"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
    ]
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["state_in", "M"], ["prod"]),
            helper.make_node("Tanh", ["prod"], ["state_out"]),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        ],
        "slow_body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_in", TensorProto.FLOAT, [dim, dim]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [dim, dim]),
        ],
    )
    return [
        helper.make_node("ReduceMean", ["flat"], ["seed"], keepdims=0),
        helper.make_node("Mul", ["ones", "seed"], ["state0"]),
        helper.make_node("Loop", ["trip", "cond", "state0"], ["state_final"], body=body),
        helper.make_node("ReduceMean", ["state_final"], ["state_mean"], keepdims=0),
        helper.make_node("Mul", ["state_mean", "zero"], ["slow_zero"]),
    ]


def _with_card(model: onnx.ModelProto, card: ModelCard | None) -> onnx.ModelProto:
    if card is not None:
        helper.set_model_props(model, {METADATA_KEY: card.to_json()})
    return model


def _write(path: str | Path, data: bytes) -> Path:
    """Write atomically (temp file + rename), as rsync does."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def valid_model_bytes(
    schema: LabelSchema | None = None,
    *,
    dominant: str | int = 0,
    margin: float = 8.0,
    name: str = "tiny-test-classifier",
    **card_fields,
) -> bytes:
    """A sound classifier; ``dominant`` (label name or index) wins by ``margin`` logits; ``card_fields`` go
    to :func:`make_card`."""
    card = make_card(schema, name=name, **card_fields)
    index = card.labels.index(dominant) if isinstance(dominant, str) else dominant
    return _with_card(_classifier_graph(card, dominant=index, margin=margin), card).SerializeToString()


def write_valid(path: str | Path, schema: LabelSchema | None = None, **kwargs) -> Path:
    """Write :func:`valid_model_bytes` to ``path``."""
    return _write(path, valid_model_bytes(schema, **kwargs))


def write_low_confidence(path: str | Path, schema: LabelSchema | None = None) -> Path:
    """A classifier whose top probability is close to 1/K (every logit nearly equal)."""
    return _write(path, valid_model_bytes(schema, margin=0.05))


def write_wrong_schema_hash(path: str | Path, schema: LabelSchema | None = None) -> Path:
    """Sound graph whose card binds to another label schema's hash."""
    card = make_card(schema, schema_hash="0" * 64)
    return _write(path, _with_card(_classifier_graph(card), card).SerializeToString())


def write_no_card(path: str | Path, schema: LabelSchema | None = None) -> Path:
    """Sound graph without the model card metadata."""
    return _write(path, _classifier_graph(make_card(schema)).SerializeToString())


def write_invalid_card(path: str | Path, schema: LabelSchema | None = None) -> Path:
    """Sound graph whose card metadata is not a valid card (JSON missing required fields)."""
    model = _classifier_graph(make_card(schema))
    helper.set_model_props(model, {METADATA_KEY: '{"card_version": "1.0", "labels": ["a"]}'})
    return _write(path, model.SerializeToString())


def write_truncated(path: str | Path, schema: LabelSchema | None = None) -> Path:
    """The first half of a valid model's bytes (an interrupted copy)."""
    data = valid_model_bytes(schema)
    return _write(path, data[: len(data) // 2])


def write_random_bytes(path: str | Path, size: int = 4096, seed: int = 1) -> Path:
    """Bytes that are not an ONNX model at all."""
    return _write(path, np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())


def write_wrong_input_shape(path: str | Path, schema: LabelSchema | None = None) -> Path:
    """Card says 32x32 but the graph takes 48x48."""
    card = make_card(schema)
    return _write(path, _with_card(_classifier_graph(card, graph_size=48), card).SerializeToString())


def write_nan_output(path: str | Path, schema: LabelSchema | None = None) -> Path:
    """Loads and runs, but every output is NaN (fails the smoke inference)."""
    card = make_card(schema)
    return _write(path, _with_card(_classifier_graph(card, nan_output=True), card).SerializeToString())


def write_nan_on_dark(path: str | Path, schema: LabelSchema | None = None) -> Path:
    """Passes the mid-grey smoke inference but outputs NaN on dark frames (mean below ~64/255)."""
    card = make_card(schema)
    return _write(path, _with_card(_classifier_graph(card, nan_on_dark=True), card).SerializeToString())


def write_slow(path: str | Path, schema: LabelSchema | None = None, iterations: int = 4000, dim: int = 192) -> Path:
    """A sound classifier that spends a Loop of ``iterations`` dim x dim matmuls per inference."""
    card = make_card(schema, name="tiny-slow-classifier")
    model = _classifier_graph(card, slow_iterations=iterations, slow_dim=dim)
    return _write(path, _with_card(model, card).SerializeToString())


def write_small_cnn(path: str | Path, schema: LabelSchema | None = None, size: int = 224, seed: int = 0) -> Path:
    """A small real CNN (3 strided 3x3 convs + ReLU, pool, linear) at ``size`` x ``size``: a latency workload."""
    card = make_card(schema, size=size, name="small-cnn")
    rng = np.random.default_rng(seed)
    chans = [3, 16, 32, 64]
    inits, nodes, x = [], [], card.input.tensor_name
    for i, (cin, cout) in enumerate(itertools.pairwise(chans)):
        w = (rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"cw{i}"), numpy_helper.from_array(np.zeros(cout, np.float32), f"cb{i}")]
        nodes += [
            helper.make_node("Conv", [x, f"cw{i}", f"cb{i}"], [f"conv{i}"], pads=[1, 1, 1, 1], strides=[2, 2]),
            helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]),
        ]
        x = f"relu{i}"
    k = len(card.labels)
    inits += [
        numpy_helper.from_array((rng.standard_normal((k, chans[-1])) * 0.1).astype(np.float32), "fw"),
        numpy_helper.from_array(np.zeros(k, np.float32), "fb"),
    ]
    nodes += [
        helper.make_node("GlobalAveragePool", [x], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fw", "fb"], [card.output_name], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "small_cnn",
        [helper.make_tensor_value_info(card.input.tensor_name, TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info(card.output_name, TensorProto.FLOAT, ["batch", k])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rdk-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return _write(path, _with_card(model, card).SerializeToString())
