"""The default model for the agent-side benchmarks: the baseline experiment's network as a weld-schema ONNX file.

``compose_baseline`` reads ``+experiment=baseline`` through Hydra's compose API; ``default_weld_model``
exports that backbone (ImageNet-pretrained EfficientNet-Lite0 with a fresh 5-class weld head, at the
baseline's input size) with a real model card, cached under bench/out/models/. It is untrained on welds:
the agent benchmarks measure cost, not accuracy, and set the confidence threshold to 0 so it decides.
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from bench.common import OUT_DIR, REPO
from shared_schema import ModelCard, default_weld_schema, read_model_card

CONFIG_DIR = REPO / "desktop_trainer" / "configs"


def compose_baseline(*overrides: str) -> DictConfig:
    """The trainer's config for ``+experiment=baseline`` (plus overrides), composed without running."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=["+experiment=baseline", *overrides])


def build_baseline_net(cfg: DictConfig, num_classes: int):
    """The baseline backbone (torch module) for ``num_classes`` outputs, as the trainer builds it."""
    from desktop_trainer.models.backbones import build_backbone
    from desktop_trainer.train import input_size

    return build_backbone(
        cfg.model.backbone,
        num_classes=num_classes,
        pretrained=bool(cfg.model.pretrained),
        image_size=input_size(cfg.data.image_size),
        dropout=cfg.model.dropout,
        bn_momentum=cfg.model.get("bn_momentum"),
    ).eval()


def default_weld_model(name: str = "default") -> Path:
    """bench/out/models/<name>.onnx: the baseline network with the weld schema's card (exported once)."""
    from desktop_trainer.export.onnx_export import export_onnx
    from desktop_trainer.train import input_contract

    cfg = compose_baseline()
    path = OUT_DIR / "models" / f"{name}-{cfg.model.backbone}-{cfg.data.image_size}.onnx"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = default_weld_schema()
    card = ModelCard(
        labels=tuple(schema.names),
        label_schema_hash=schema.hash,
        input=input_contract(cfg.data, cfg.model.backbone),
        name=f"bench-{name}",
        architecture=str(cfg.model.backbone),
        provenance={"note": "ImageNet backbone, untrained weld head: a cost benchmark model"},
        label_schema=schema.to_dict(),
    )
    tmp = path.with_suffix(".tmp.onnx")
    export_onnx(build_baseline_net(cfg, len(schema.names)), card, tmp)
    tmp.rename(path)
    return path


def variant(model: Path, name: str) -> Path:
    """A copy of ``model`` whose card has another name (same network, different file sha256)."""
    from desktop_trainer.export.onnx_export import embed_card

    out = model.with_name(f"{model.stem}-{name}.onnx")
    if not out.exists():
        card = read_model_card(model)
        out.write_bytes(model.read_bytes())
        embed_card(out, ModelCard.from_dict({**card.to_dict(), "name": f"{card.name}-{name}"}))
    return out
