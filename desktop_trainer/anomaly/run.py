"""``python -m desktop_trainer +experiment=anomaly data.source=...``: fit on the good images, choose the
threshold on validation, evaluate, export ``model.onnx`` (task anomaly) and write ``metrics.json``.

The split is the classifier's (a function of each sample's group). Fitting sees the non-defect
labels' training images only; validation is the val split plus the training split's defect images
(never fitted on); the test split is untouched by fitting and by the threshold choice.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from desktop_trainer.anomaly.evaluate import Scored, choose_scale, figures, score_samples, torch_scorer
from desktop_trainer.anomaly.export import check_parity, export_anomaly_onnx, ort_scorer
from desktop_trainer.anomaly.fit import AnomalyFitModule
from desktop_trainer.anomaly.model import FeatureExtractor, PatchCoreModel
from desktop_trainer.data.dataset import SampleDataset, load_sample
from desktop_trainer.data.samples import DataError
from desktop_trainer.evaluation import ort_latency_ms, ort_session
from desktop_trainer.finalize.card import code_version
from desktop_trainer.models.backbones import build_backbone
from desktop_trainer.models.macs import count_macs
from shared_schema import ModelCard
from shared_schema.anomaly import MAP_ROLE, AnomalySettings
from shared_schema.preprocess import preprocess

log = logging.getLogger(__name__)


def build_model(cfg: DictConfig, in_channels: int, image_size: tuple[int, int]) -> PatchCoreModel:
    """The backbone (``model.backbone``, ``model.pretrained``) cut at ``anomaly.layers``, in a PatchCoreModel."""
    backbone = build_backbone(
        cfg.model.backbone,
        num_classes=2,
        in_channels=in_channels,
        pretrained=cfg.model.pretrained,
        image_size=image_size,
    )
    extractor = FeatureExtractor(backbone.eval(), list(cfg.anomaly.layers))
    a = cfg.anomaly
    return PatchCoreModel(
        extractor, pool=a.pool, blur_sigma=a.blur_sigma, embed_dim=a.get("embed_dim", 0), seed=cfg.seed
    )


def fit(cfg: DictConfig, model: PatchCoreModel, dataset: SampleDataset) -> None:
    """One Lightning epoch over the good training images fills the memory bank."""
    a = cfg.anomaly
    module = AnomalyFitModule(model, a.coreset_size, a.projection_dim, a.patches_per_image)
    trainer = L.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=1,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        default_root_dir=cfg.paths.output_dir,
    )
    trainer.fit(module, DataLoader(dataset, batch_size=a.batch_size, shuffle=False, num_workers=cfg.data.num_workers))
    model.cpu().eval()


def run_anomaly(cfg: DictConfig) -> dict:
    """Fit, threshold, evaluate, export; returns metrics.json's content plus ``paths``."""
    from desktop_trainer.train import build_datamodule

    started = time.time()
    L.seed_everything(cfg.seed, workers=True)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    a = cfg.anomaly
    dm = build_datamodule(cfg)
    schema, contract = dm.dataset.schema, dm.contract
    good_labels = [lab.name for lab in schema.labels if not lab.is_defect]
    defect_labels = {lab.name for lab in schema.labels if lab.is_defect}
    if not good_labels:
        raise DataError(f"anomaly mode trains on non-defect labels, and {', '.join(schema.names)} are all defects")
    train = [s for s in dm.split.train if s.label in good_labels]
    val = [*dm.split.val, *(s for s in dm.split.train if s.label in defect_labels)]
    test = list(dm.split.test)
    if not train or not val or not test:
        raise DataError(
            f"anomaly mode needs good training images and val and test images: {len(train)}/{len(val)}/{len(test)}"
        )
    log.info(
        "anomaly: fitting on %d %s images; val %d, test %d", len(train), "/".join(good_labels), len(val), len(test)
    )

    model = build_model(cfg, contract.num_channels, (contract.height, contract.width))
    if a.weights:  # a previous run's fitted model: choose the threshold, evaluate and export again
        state = torch.load(a.weights, map_location="cpu", weights_only=True)
        model.set_memory_bank(state["memory_bank"])
        model.projection = state.setdefault("projection", model.projection)
        state["blur"] = model.blur  # the map smoothing is this run's (anomaly.blur_sigma), not the fitted run's
        model.load_state_dict(state)
    else:
        fit(cfg, model, SampleDataset(train, schema.names, contract))
    fit_s = time.time() - started

    def score(scorer, samples) -> Scored:
        return score_samples(scorer, samples, contract, defect_labels, a.mask_suffix, a.batch_size)

    scored_val = score(torch_scorer(model), val)
    image, rule = choose_scale(scored_val.scores, scored_val.defect, a.good_quantile)
    values, truth = scored_val.pixels()
    if truth.any():
        pixel, _ = choose_scale(values, truth, a.good_quantile)
    else:  # no masks: the map is read against the image threshold, as anomalib does
        lo, hi = (float(values.min()), float(values.max())) if values.size else (image.min, image.max)
        pixel = type(image)(threshold=image.threshold, min=lo, max=max(hi, lo + 1e-6))
    settings = AnomalySettings("patchcore", image, pixel, tuple(good_labels), rule)
    scored_test = score(torch_scorer(model), test)
    metrics: dict = {
        "task": "anomaly",
        "labels": schema.names,
        "label_schema_hash": schema.hash,
        "dataset": {
            "id": dm.dataset.dataset_id,
            "sources": list(dm.dataset.sources),
            "samples": len(dm.dataset.samples),
        },
        "split": {
            "fit_good": len(train),
            "val": len(val),
            "test": len(test),
            "test_defects": int(scored_test.defect.sum()),
        },
        "anomaly": settings.to_dict(),
        "val": figures(scored_val, image),
        "test": figures(scored_test, image),
    }
    shape = (contract.num_channels, contract.height, contract.width)
    macs = count_macs(model, shape)
    metrics["model"] = {
        "method": "patchcore",
        "backbone": cfg.model.backbone,
        "pretrained": str(cfg.model.pretrained),
        "layers": list(a.layers),
        "memory_bank": list(model.memory_bank.shape),
        "macs": macs,
        "input": f"{contract.channels} {contract.width}x{contract.height} {contract.resize} orient={contract.orient}",
    }
    card = ModelCard(
        labels=tuple(schema.names),
        label_schema_hash=schema.hash,
        input=contract,
        name=a.model_name,
        architecture=f"patchcore/{cfg.model.backbone}",
        output_name="score",
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        provenance={
            "dataset_id": dm.dataset.dataset_id,
            "sources": list(dm.dataset.sources),
            "samples": len(train),
            "train_seconds": round(fit_s, 1),
            "code_version": code_version(),
        },
        metrics={"test": {k: metrics["test"][k] for k in ("image_auroc", "accuracy")}, "macs": macs},
        label_schema=schema.to_dict(),
        task="anomaly",
        extra_outputs={MAP_ROLE: "anomaly_map"},
        anomaly=settings.to_dict(),
    )
    path = export_anomaly_onnx(model, card, out_dir / "model.onnx")
    loaded = [load_sample(s, contract.channels == "rgbd") for s in val[:8]]
    batch = np.stack([preprocess(image, contract, depth) for image, depth in loaded])
    metrics["parity"] = check_parity(model, path, card, batch, a.parity_rtol)
    metrics["onnx_test"] = figures(score(ort_scorer(ort_session(str(path), threads=2), card), test), image)
    metrics["latency"] = {"fp32": ort_latency_ms(str(path), shape, runs=cfg.export.latency_runs)}
    metrics["training"] = {"seconds": round(time.time() - started, 1), "fit_seconds": round(fit_s, 1)}
    metrics["config"] = OmegaConf.to_container(cfg, resolve=False)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _print_closing(out_dir, metrics)
    torch.save(model.state_dict(), out_dir / "anomaly_model.pt")
    return {**metrics, "paths": {"model": str(path), "metrics": str(out_dir / "metrics.json")}}


def _print_closing(out_dir: Path, metrics: dict) -> None:
    test, onnx = metrics["test"], metrics["onnx_test"]
    print(
        f"anomaly model: {out_dir / 'model.onnx'}\n"
        f"  test image AUROC {test['image_auroc']} (ONNX {onnx['image_auroc']}), pixel AUROC {test.get('pixel_auroc')} "
        f"(ONNX {onnx.get('pixel_auroc')}), accuracy at the threshold {test['accuracy']}\n"
        f"  {metrics['model']['macs'] / 1e9:.3f} GMAC, {metrics['latency']['fp32']['median_ms']} ms at 1 thread\n"
        f"  deploy beside the classifier: rsync model.onnx <board>:<models-dir>/anomaly.onnx"
    )
