"""Recipe pieces: the sample-weighted smoothed loss, the backbone's input normalisation, BatchNorm momentum."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from desktop_trainer.models.backbones import build_backbone
from desktop_trainer.models.losses import WeightedSmoothedCrossEntropy
from desktop_trainer.train import input_contract
from tests.trainer.trainer_support import make_cfg


def _optimal_confidence(loss_fn: nn.Module, target: int, classes: int = 4) -> float:
    """The probability of ``target`` that minimises ``loss_fn`` for one sample (gradient descent on logits)."""
    logits = torch.zeros(1, classes, requires_grad=True)
    opt = torch.optim.SGD([logits], lr=2.0)
    for _ in range(3000):
        opt.zero_grad()
        loss_fn(logits, torch.tensor([target])).backward()
        opt.step()
    return float(torch.softmax(logits, 1)[0, target])


def test_class_weights_do_not_bend_the_smoothed_target():
    weights = [0.3, 2.0, 2.0, 2.0]  # a common class 0 and three rare ones
    smoothed = 1 - 0.1 + 0.1 / 4
    ours = _optimal_confidence(WeightedSmoothedCrossEntropy(weights, 0.1), target=0)
    assert ours == pytest.approx(smoothed, abs=2e-3)
    # PyTorch's weighted smoothing pulls the common class's confidence far below the smoothed target
    torch_loss = nn.CrossEntropyLoss(weight=torch.tensor(weights), label_smoothing=0.1)
    assert _optimal_confidence(torch_loss, target=0) < smoothed - 0.1


def test_without_smoothing_it_is_the_weighted_cross_entropy():
    logits = torch.randn(16, 5, generator=torch.Generator().manual_seed(0))
    target = torch.arange(16) % 5
    weights = [0.5, 1.0, 1.5, 2.0, 3.0]
    expected = nn.CrossEntropyLoss(weight=torch.tensor(weights))(logits, target)
    assert float(WeightedSmoothedCrossEntropy(weights)(logits, target)) == pytest.approx(float(expected), rel=1e-6)
    plain = nn.CrossEntropyLoss()(logits, target)
    assert float(WeightedSmoothedCrossEntropy(None)(logits, target)) == pytest.approx(float(plain), rel=1e-6)


def test_normalisation_follows_the_backbone_unless_set(tmp_path):
    lite = make_cfg(["+experiment=baseline", f"paths.output_dir={tmp_path}"])
    contract = input_contract(lite.data, lite.model.backbone)
    assert contract.mean == pytest.approx((127 / 255,) * 3) and contract.std == pytest.approx((128 / 255,) * 3)
    resnet = make_cfg(["model=resnet18", f"paths.output_dir={tmp_path}"])
    assert input_contract(resnet.data, "resnet18").mean == pytest.approx((0.485, 0.456, 0.406))
    explicit = make_cfg(["data.mean=[0.5,0.5,0.5]", "data.std=[0.2,0.2,0.2]", f"paths.output_dir={tmp_path}"])
    assert input_contract(explicit.data, "efficientnet_lite0").std == pytest.approx((0.2,) * 3)
    wide = make_cfg(["data.image_size=[96,160]", "data.orient=landscape", f"paths.output_dir={tmp_path}"])
    contract = input_contract(wide.data, "efficientnet_lite0")
    assert (contract.height, contract.width, contract.orient) == (96, 160, "landscape")


def test_bn_momentum_replaces_the_ports_value():
    port = build_backbone("efficientnet_lite0", num_classes=3, image_size=(32, 48))
    tuned = build_backbone("efficientnet_lite0", num_classes=3, image_size=(32, 48), bn_momentum=0.1)
    momenta = {m.momentum for m in tuned.modules() if isinstance(m, nn.BatchNorm2d)}
    assert momenta == {0.1}
    assert {round(m.momentum, 6) for m in port.modules() if isinstance(m, nn.BatchNorm2d)} == {0.01}
    assert tuned(torch.zeros(2, 3, 32, 48)).shape == (2, 3)
