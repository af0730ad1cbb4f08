"""The exported class maps: consistent with the logits, gated by parity, kept by int8, absent where the head
has none, and placed on the input where the strided layers put them."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper

from desktop_trainer.evaluation import ort_session
from desktop_trainer.export.onnx_export import ParityError, check_parity, export_onnx
from desktop_trainer.export.quantize import quantize_int8
from desktop_trainer.models.backbones import build_backbone
from desktop_trainer.models.cam import WithCam, cam_grid
from desktop_trainer.models.fine_cam import fit_probe
from shared_schema import read_model_card
from tests.helpers.onnx_models import make_card

SIZE = 64


def run(path, batch: np.ndarray) -> dict[str, np.ndarray]:
    session = ort_session(str(path))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": batch}), strict=True))


def batch(channels: int, n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, channels, SIZE, SIZE)).astype(np.float32)


@pytest.fixture(scope="module")
def lite0(tmp_path_factory):
    torch.manual_seed(0)
    net = build_backbone("efficientnet_lite0", 5, in_channels=4, image_size=SIZE).eval()
    card = make_card(size=SIZE, channels="rgbd")
    path = export_onnx(net, card, tmp_path_factory.mktemp("cam") / "model.onnx")
    return net, path


def test_cam_spatial_mean_plus_bias_is_the_logits(lite0):
    net, path = lite0
    card = read_model_card(path)
    assert card.extra_outputs == {"cam": "cam"}
    assert card.provenance["heatmap"]["grid"] == cam_grid(WithCam(net), SIZE, SIZE)
    x = batch(4)
    out = run(path, x)
    assert list(out) == ["logits", "cam"]  # the logits stay the first output (ort_logits reads [0])
    assert out["cam"].shape == (3, 5, 2, 2)  # stride 32
    implied = out["cam"].mean(axis=(2, 3)) + net._fc.bias.detach().numpy()
    np.testing.assert_allclose(implied, out["logits"], atol=1e-4)
    with torch.no_grad():
        np.testing.assert_allclose(out["logits"], net(torch.from_numpy(x)).numpy(), atol=1e-4)


def test_parity_gate_covers_the_cam(lite0, tmp_path):
    net, path = lite0
    report = check_parity(net, path, batch(4))
    assert report["cam"]["shape"] == [5, 2, 2] and report["cam"]["max_abs_diff"] < 1e-3
    # the same file with a checkerboard added to its cam: the logits still agree, the cam does not
    proto = onnx.load(str(path))
    producer = next(n for n in proto.graph.node if "cam" in n.output)
    producer.output[list(producer.output).index("cam")] = "cam_raw"
    board = np.tile(np.array([[0.5, -0.5], [-0.5, 0.5]], np.float32), (1, 5, 1, 1))
    proto.graph.initializer.append(numpy_helper.from_array(board, "board"))
    proto.graph.node.append(helper.make_node("Add", ["cam_raw", "board"], ["cam"]))
    onnx.save(proto, str(tmp_path / "off.onnx"))
    with pytest.raises(ParityError, match="cam"):
        check_parity(net, tmp_path / "off.onnx", batch(4))


def test_int8_keeps_the_cam_output(lite0, tmp_path):
    _, path = lite0
    int8 = quantize_int8(path, tmp_path / "model.int8.onnx", batch(4, n=4, seed=1))
    card = read_model_card(int8)
    assert card.precision == "int8" and card.extra_outputs == {"cam": "cam"}
    out = run(int8, batch(4))
    assert out["cam"].shape == (3, 5, 2, 2) and np.isfinite(out["cam"]).all()


def test_heads_without_a_class_map_say_so_and_old_roles_are_dropped(lite0, tmp_path):
    net = build_backbone("mobilenet_v3_small", 5, image_size=SIZE).eval()
    card = dataclasses.replace(make_card(size=SIZE), extra_outputs={"cam": "cam"})  # as an older export said
    path = export_onnx(net, card, tmp_path / "m.onnx")
    written = read_model_card(path)
    assert written.extra_outputs == {}
    assert written.provenance["heatmap"]["cam"] is None and "MLP" in written.provenance["heatmap"]["reason"]
    assert list(run(path, batch(3))) == ["logits"]
    plain = export_onnx(lite0[0], make_card(size=SIZE, channels="rgbd"), tmp_path / "plain.onnx", cam=False)
    assert read_model_card(plain).extra_outputs == {} and list(run(plain, batch(4))) == ["logits"]


def test_grid_follows_the_padding():
    # torchvision pads symmetrically (cells on an even split less half a stride's drift); the Lite0 port
    # pads right/bottom first, which moves its cells right and down
    assert cam_grid(WithCam(build_backbone("resnet18", 5).eval()), 224, 224) == {
        "stride": [32, 32],
        "offset": [0.5, 0.5],
    }
    lite = WithCam(build_backbone("efficientnet_lite0", 5, image_size=(300, 400)).eval())
    assert cam_grid(lite, 300, 400) == {"stride": [32, 32], "offset": [11.5, 15.5]}


def test_a_probe_batch_adds_the_stride_16_cam_fine(lite0, tmp_path):
    net, _ = lite0
    probe = batch(4, n=24, seed=2)
    path = export_onnx(net, make_card(size=SIZE, channels="rgbd"), tmp_path / "fine.onnx", probe_batch=probe)
    card = read_model_card(path)
    assert card.extra_outputs == {"cam": "cam", "cam_fine": "cam_fine"}
    heatmap = card.provenance["heatmap"]
    assert heatmap["fine_grid"]["stride"] == [16, 16] and heatmap["grid"]["stride"] == [32, 32]
    assert heatmap["fine_probe"]["images"] == 24 and 0 <= heatmap["fine_probe"]["top1_agreement"] <= 1
    x = batch(4)
    out = run(path, x)
    assert list(out) == ["logits", "cam", "cam_fine"] and out["cam_fine"].shape == (3, 5, 4, 4)
    own = copy.deepcopy(net)  # the wrapper hooks a block of the network it wraps
    block, weight, _ = fit_probe(own, probe)
    with torch.no_grad():
        logits, _, fine = WithCam(own, (block, weight)).eval()(torch.from_numpy(x))
    np.testing.assert_allclose(out["cam_fine"], fine.numpy(), atol=1e-4 * max(1.0, float(fine.abs().max())))
    np.testing.assert_allclose(out["logits"], logits.numpy(), atol=1e-4)  # the logits path is untouched
