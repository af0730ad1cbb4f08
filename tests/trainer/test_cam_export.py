"""The exported class maps: consistent with the logits, gated by parity, kept by int8, absent where the head
has none, and placed on the input where the strided layers put them; the auxiliary stride-16 head (deep
supervision) trained with its weighted loss and exported exactly as ``cam_fine``."""

from __future__ import annotations

import copy
import dataclasses
from functools import partial

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper
from torch.nn import functional as F

from desktop_trainer.evaluation import ort_session
from desktop_trainer.export.onnx_export import ParityError, check_parity, export_onnx
from desktop_trainer.export.quantize import quantize_int8
from desktop_trainer.models.aux_head import aux_head
from desktop_trainer.models.backbones import build_backbone
from desktop_trainer.models.cam import WithCam, cam_grid
from desktop_trainer.models.losses import WeightedSmoothedCrossEntropy
from desktop_trainer.models.module import Classifier
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


@pytest.fixture(scope="module")
def with_aux(tmp_path_factory):
    torch.manual_seed(1)
    net = build_backbone("efficientnet_lite0", 5, in_channels=4, image_size=SIZE, aux_head=True).eval()
    path = export_onnx(net, make_card(size=SIZE, channels="rgbd"), tmp_path_factory.mktemp("fine") / "model.onnx")
    return net, path


def test_an_auxiliary_head_is_exported_exactly_as_cam_fine(with_aux):
    net, path = with_aux
    card = read_model_card(path)
    assert card.extra_outputs == {"cam": "cam", "cam_fine": "cam_fine"}
    heatmap = card.provenance["heatmap"]
    assert heatmap["fine_grid"]["stride"] == [16, 16] and heatmap["grid"]["stride"] == [32, 32]
    x = batch(4)
    out = run(path, x)
    assert list(out) == ["logits", "cam", "cam_fine"] and out["cam_fine"].shape == (3, 5, 4, 4)
    head = aux_head(net)
    with torch.no_grad():
        logits = net(torch.from_numpy(x)).numpy()
        aux_logits = head.logits().numpy()  # what the training's auxiliary loss sees
    np.testing.assert_allclose(out["logits"], logits, atol=1e-4)  # the logits stay the main head's
    implied = out["cam_fine"].mean(axis=(2, 3)) + head.fc.bias.detach().numpy()
    np.testing.assert_allclose(implied, aux_logits, atol=1e-4)
    assert not np.allclose(aux_logits, logits, atol=1e-2)  # a head of its own, not the main one


def test_parity_gate_covers_cam_fine_and_int8_keeps_both_maps(with_aux, tmp_path):
    net, path = with_aux
    report = check_parity(net, path, batch(4))
    assert report["cam_fine"]["shape"] == [5, 4, 4] and report["cam_fine"]["max_abs_diff"] < 1e-3
    proto = onnx.load(str(path))
    producer = next(n for n in proto.graph.node if "cam_fine" in n.output)
    producer.output[list(producer.output).index("cam_fine")] = "fine_raw"
    proto.graph.initializer.append(numpy_helper.from_array(np.full((1, 5, 1, 1), 0.5, np.float32), "shift"))
    proto.graph.node.append(helper.make_node("Add", ["fine_raw", "shift"], ["cam_fine"]))
    onnx.save(proto, str(tmp_path / "off.onnx"))
    with pytest.raises(ParityError, match="cam_fine"):
        check_parity(net, tmp_path / "off.onnx", batch(4))
    int8 = quantize_int8(path, tmp_path / "model.int8.onnx", batch(4, n=4, seed=1))
    assert read_model_card(int8).extra_outputs == {"cam": "cam", "cam_fine": "cam_fine"}
    out = run(int8, batch(4))
    assert out["cam"].shape == (3, 5, 2, 2) and np.isfinite(out["cam"]).all()
    assert out["cam_fine"].shape == (3, 5, 4, 4) and np.isfinite(out["cam_fine"]).all()


def test_training_adds_the_weighted_auxiliary_loss():
    torch.manual_seed(2)
    net = build_backbone("efficientnet_lite0", 3, in_channels=3, image_size=SIZE, aux_head=True)
    module = Classifier(net, 3, WeightedSmoothedCrossEntropy(), partial(torch.optim.SGD, lr=0.1), aux_weight=0.4)
    module.eval()  # no dropout, fixed BatchNorm statistics: the twin below sees the same network
    x, y = torch.from_numpy(batch(3, n=4, seed=3)), torch.tensor([0, 1, 2, 1])
    loss = module.training_step((x, y), 0)
    twin = copy.deepcopy(net)  # the copy's head follows the copy's block (export deep-copies the network)
    main = F.cross_entropy(twin(x), y)
    aux = F.cross_entropy(aux_head(twin).logits(), y)
    torch.testing.assert_close(loss, main + 0.4 * aux)
    loss.backward()
    assert float(aux_head(net).fc.weight.grad.abs().sum()) > 0  # the auxiliary head trains
    plain = build_backbone("efficientnet_lite0", 3, image_size=SIZE)
    assert aux_head(plain) is None and not any("aux" in k for k in plain.state_dict())


def test_the_demo_recipe_trains_the_auxiliary_head():
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="desktop_trainer.configs", version_base="1.3"):
        demo = compose("train", overrides=["+experiment=demo", "data.source=x"])
        default = compose("train", overrides=["data.source=x"])
    assert demo.model.aux_head is True and demo.model.net.aux_head is True and demo.model.module.aux_weight == 0.4
    assert default.model.aux_head is False
