"""Every experiment and every config group option composes (Hydra's compose API) and every ``_target_``
node in it instantiates: the data module with its augmentations, the net, loss and LightningModule
with their optimizer and scheduler, the trainer with its callbacks, loggers and profiler, and the
exporters. A broken ``_target_`` or argument fails here. Tiny images, no training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from desktop_trainer.data.datamodule import WeldDataModule
from desktop_trainer.finalize.pipeline import exporters
from desktop_trainer.models.backbones import BACKBONES
from desktop_trainer.models.module import Classifier
from desktop_trainer.train import build_datamodule, build_module, build_trainer
from tests.trainer.trainer_support import write_rgbd_export

CONFIG_MODULE = "desktop_trainer.configs"
ABSTRACT = {("model", "default")}  # the base every backbone config inherits; it names no backbone
# what train.py's builders instantiate, each with everything below it
BUILT = ("data", "model.net", "model.loss", "model.module", "model.optimizer", "model.scheduler", "trainer")
BUILT_GROUPS = ("callbacks.", "logger.", "export.exporters.")


def group_options() -> dict[str, list[str]]:
    """The trainer's config groups and their options, as Hydra's config loader sees them."""
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        return {g: loader.get_group_options(g) for g in loader.list_groups("") if g != "hydra"}


OPTIONS = group_options()
EXPERIMENTS = OPTIONS["experiment"]
SELECTIONS = [
    f"{'+' if group == 'experiment' else ''}{group}={option}"
    for group, options in sorted(OPTIONS.items())
    for option in options
    if (group, option) not in ABSTRACT
]


@pytest.fixture(scope="module")
def rgbd_source(tmp_path_factory) -> Path:
    """Two RGB-D frames per class as an unpacked export: serves RGB and RGB-D configs alike."""
    return write_rgbd_export(tmp_path_factory.mktemp("rgbd"))


def tiny(cfg_overrides: list[str], source: Path, out: Path) -> DictConfig:
    """Compose with the given overrides on the tiny source, at 32 px, into ``out``."""
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[
                *cfg_overrides,
                f"data.source={source}",
                f"data.cache_dir={out / 'cache'}",
                f"paths.output_dir={out}",
                "data.image_size=32",
                "data.min_per_class=1",
                "data.progress=false",
            ],
        )
    if cfg.trainer.get("accelerator") in ("gpu", "cuda") and not torch.cuda.is_available():
        cfg.trainer.accelerator = "cpu"  # trainer=gpu on a machine without one: every other argument still counts
    return cfg


def target_paths(node, path: str = "") -> list[str]:
    """Dotted paths of every ``_target_`` node in a config."""
    found = [path] if isinstance(node, DictConfig) and "_target_" in node else []
    if isinstance(node, DictConfig):
        for key in node:
            found += target_paths(node._get_node(key), f"{path}.{key}".lstrip("."))
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            found += target_paths(node._get_node(i), f"{path}[{i}]")
    return found


def instantiate_everything(cfg: DictConfig) -> None:
    """Build every object the run builds, and use each once where that costs nothing."""
    unbuilt = [
        p for p in target_paths(cfg) if not p.startswith(BUILT) and not any(p.startswith(g) for g in BUILT_GROUPS)
    ]
    assert not unbuilt, f"_target_ nodes that train.py does not build: {unbuilt}"
    for path in target_paths(cfg):
        get_object(OmegaConf.select(cfg, path)._target_)  # every target resolves, built or not

    dm = build_datamodule(cfg)
    assert isinstance(dm, WeldDataModule)
    assert len(dm.augment.transforms if dm.augment else []) == len(cfg.data.augment or [])
    x, y = dm.eval_dataset("train" if not dm.split.val else "val")[0]
    module = build_module(cfg, dm)
    assert isinstance(module, Classifier)
    assert module.net.eval()(x[None]).shape == (1, len(dm.labels))
    assert torch.isfinite(module.loss(module.net(x[None]), torch.tensor([y])))
    optimizer = module.optimizer_factory(params=[p for p in module.parameters() if p.requires_grad])
    if module.scheduler_factory is not None:
        module.scheduler_factory(optimizer=optimizer, total_steps=10)
    trainer = build_trainer(cfg)
    assert len(trainer.callbacks) >= sum(c is not None for c in (cfg.callbacks or {}).values())
    assert len(trainer.loggers) == sum(c is not None for c in (cfg.logger or {}).values())
    assert all(callable(e) for e in exporters(cfg.export).values())


def test_the_groups_hold_what_the_docs_name():
    assert {"baseline", "demo", "smoke"} <= set(EXPERIMENTS)
    assert {"default", "fdr", "limit", "profiler"} <= set(OPTIONS["debug"])
    assert set(OPTIONS["model"]) - {"default"} == set(BACKBONES)


@pytest.mark.parametrize("selection", SELECTIONS)
def test_every_group_option_instantiates(selection, rgbd_source, tmp_path):
    instantiate_everything(tiny([selection], rgbd_source, tmp_path))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("debug", OPTIONS["debug"])
def test_debug_holds_over_every_experiment(experiment, debug, rgbd_source, tmp_path):
    """A debug option changes the same keys to the same values whatever experiment comes with it."""
    plain = OmegaConf.to_container(tiny([], rgbd_source, tmp_path))
    debugged = tiny([f"debug={debug}"], rgbd_source, tmp_path)
    changed = {p: v for p, v in flat(OmegaConf.to_container(debugged)).items() if flat(plain).get(p) != v}
    assert changed, f"debug={debug} changes nothing"
    both = tiny([f"+experiment={experiment}", f"debug={debug}"], rgbd_source, tmp_path)
    assert {p: flat(OmegaConf.to_container(both)).get(p) for p in changed} == changed
    instantiate_everything(both)


def flat(tree: dict, prefix: str = "") -> dict:
    """{dotted.path: leaf} of a nested dict."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_backbones_share_the_default_optimizer_scheduler_and_loss(rgbd_source, tmp_path):
    models = [OmegaConf.to_container(tiny([f"model={name}"], rgbd_source, tmp_path).model) for name in BACKBONES]
    for key in ("optimizer", "scheduler", "loss", "module", "label_smoothing"):
        assert len({repr(m[key]) for m in models}) == 1, key


def test_a_broken_target_fails(rgbd_source, tmp_path):
    cfg = tiny(["+experiment=smoke"], rgbd_source, tmp_path)
    cfg.callbacks.epoch_summary._target_ = "desktop_trainer.progress.NoSuchCallback"
    with pytest.raises(Exception, match="NoSuchCallback"):
        instantiate_everything(cfg)
    cfg = tiny(["+experiment=smoke", "+model.optimizer.momentum=0.9"], rgbd_source, tmp_path)
    with pytest.raises(TypeError, match="momentum"):  # AdamW has none: a partial fails only when called
        instantiate_everything(cfg)
