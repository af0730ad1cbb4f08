"""Every experiment and model config composes, and the values that matter are what they claim."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra.utils import instantiate

from desktop_trainer.data.dataset import build_augment
from desktop_trainer.models.backbones import BACKBONES
from tests.trainer.trainer_support import CONFIG_DIR, make_cfg

CONFIGS = CONFIG_DIR
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml") if p.stem != "default")


def test_expected_experiments_exist():
    assert {"baseline", "smoke", "demo"} <= set(EXPERIMENTS)
    assert set(MODELS) == set(BACKBONES)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes(name, tmp_path):
    cfg = make_cfg([f"+experiment={name}", f"paths.output_dir={tmp_path}", "data.source=/nowhere"])
    assert cfg.task_name == name
    assert cfg.model.backbone in BACKBONES
    assert cfg.callbacks.model_checkpoint.monitor == "val/f1"
    assert cfg.callbacks.model_checkpoint.dirpath == f"{tmp_path}/checkpoints"
    augment = build_augment(instantiate(cfg.data.augment))
    assert (augment is None) == (name == "anomaly")  # a memory bank of good patches is fitted on unaugmented images
    optimizer = instantiate(cfg.model.optimizer)
    assert optimizer.func.__name__ == "AdamW"
    for callback in cfg.callbacks.values():
        instantiate(callback)


def test_baseline_is_the_pretrained_lite0_recipe(tmp_path):
    cfg = make_cfg(["+experiment=baseline", f"paths.output_dir={tmp_path}"])
    assert (cfg.model.backbone, cfg.model.pretrained, cfg.data.image_size) == ("efficientnet_lite0", True, 224)
    assert (cfg.data.resize, cfg.data.imbalance, cfg.model.label_smoothing, list(cfg.model.freeze)) == (
        "letterbox",
        "none",
        0.0,
        [],
    )
    assert cfg.trainer.accelerator == "auto" and cfg.trainer.precision == "auto"
    assert cfg.export.int8 is True


def test_smoke_is_small_and_cpu(tmp_path):
    cfg = make_cfg(["+experiment=smoke", f"paths.output_dir={tmp_path}"])
    assert cfg.data.image_size <= 64 and cfg.trainer.max_epochs <= 3
    assert cfg.trainer.accelerator == "cpu" and cfg.model.pretrained is False


@pytest.mark.parametrize("model", MODELS)
def test_model_group_override(model, tmp_path):
    cfg = make_cfg([f"model={model}", f"paths.output_dir={tmp_path}"])
    assert cfg.model.backbone == model


@pytest.mark.parametrize("sweep", sorted((Path(__file__).parents[2] / "bench" / "sweeps").glob("*.yaml")), ids=str)
def test_every_recipe_sweep_variant_composes(sweep, tmp_path):
    variants = yaml.safe_load(sweep.read_text())
    assert variants
    for name, overrides in variants.items():
        cfg = make_cfg(["+experiment=baseline", f"paths.output_dir={tmp_path}", *overrides])
        assert build_augment(instantiate(cfg.data.augment)) is not None, name
    affine = make_cfg(["+experiment=baseline", f"paths.output_dir={tmp_path}", *variants["with_affine"]])
    assert [a["_target_"].rsplit(".", 1)[1] for a in affine.data.augment][3] == "Affine"
