"""The golden set is never trained on: an exported archive whose golden samples sit in groups the stable split
sends to train or val, loaded through the trainer's own config and datamodule."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import cv2
import numpy as np

from desktop_trainer.train import build_datamodule, build_module, build_trainer
from shared_schema import DatasetManifest, FileRef, SampleRecord, default_weld_schema
from shared_schema.split import split_of
from tests.trainer.trainer_support import make_cfg, smoke_overrides

LABELS = default_weld_schema().names
NAMES = [f"part-{i}" for i in range(400)]
BY_SIDE = {side: [g for g in NAMES if split_of(g, 0.15, 0.15) == side] for side in ("train", "val", "test")}


def _record(sample_id: str, label: str, group: str, golden: bool, rng: np.random.Generator):
    blob = cv2.imencode(".png", rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))[1].tobytes()
    ref = FileRef(f"samples/{sample_id}/rgb.png", hashlib.sha256(blob).hexdigest(), len(blob))
    return SampleRecord(sample_id, label, "2026-01-01T00:00:00Z", 32, 24, ref, group=group, golden=golden), blob


def _write_archive(path: Path) -> tuple[set[str], set[str]]:
    """Per class: 4 ordinary train groups, 2 ordinary val groups, a golden sample alone in a val group, and a
    train group holding a golden and an ordinary sample. Returns (golden ids, ordinary ids that share a group
    with a golden one)."""
    rng = np.random.default_rng(0)
    train, val = iter(BY_SIDE["train"]), iter(BY_SIDE["val"])
    records, blobs, golden, companions = [], {}, set(), set()
    for label in LABELS:
        shared = next(train)
        plan = [(next(train), False) for _ in range(4)] + [(next(val), False) for _ in range(2)]
        plan += [(next(val), True), (shared, True), (shared, False)]
        for i, (group, is_golden) in enumerate(plan):
            sample_id = f"{label}-{i}"
            record, blob = _record(sample_id, label, group, is_golden, rng)
            records.append(record)
            blobs[record.rgb.path] = blob
            if is_golden:
                golden.add(sample_id)
            elif group == shared:
                companions.add(sample_id)
    manifest = DatasetManifest("ds-golden", "2026-01-01T00:00:00Z", {}, default_weld_schema(), tuple(records))
    with tarfile.open(path, "w") as tar:
        for name, data in [("manifest.json", manifest.to_json().encode()), *blobs.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return golden, companions


def test_golden_samples_are_tested_on_and_never_trained_or_validated_on(tmp_path):
    archive = tmp_path / "export.tar"
    golden, companions = _write_archive(archive)
    manifest_groups = {s.id: s.group for s in _manifest(archive).samples}
    natural = {sid: split_of(manifest_groups[sid], 0.15, 0.15) for sid in golden | companions}
    assert {natural[sid] for sid in golden} == {"train", "val"}  # without the flag they would be trained on

    cfg = make_cfg(smoke_overrides(tmp_path / "run", str(archive), "data.image_size=32", "trainer.max_epochs=1"))
    dm = build_datamodule(cfg)
    split = {name: {s.id for s in getattr(dm.split, name)} for name in ("train", "val", "test")}
    assert golden <= split["test"] and companions <= split["test"]
    assert not (golden | companions) & (split["train"] | split["val"])
    assert len(split["train"]) == 4 * len(LABELS)  # ordinary groups stay where the split put them
    assert len(split["val"]) == 2 * len(LABELS)

    loaders = {"train": dm.train_dataloader(), "val": dm.val_dataloader(), "test": dm.test_dataloader()}
    served = {name: {s.id for s in loader.dataset.samples} for name, loader in loaders.items()}
    assert not golden & (served["train"] | served["val"]) and golden <= served["test"]
    assert all(s.golden == (s.id in golden) for s in dm.split.test)
    summary = dm.split.summary(dm.labels)
    assert summary["golden"] == len(golden)
    assert any(f"{len(companions)} sample(s) that are not golden go to test" in w for w in summary["warnings"])

    trainer = build_trainer(cfg)  # one real epoch: what Lightning itself iterated holds no golden sample
    trainer.fit(build_module(cfg, dm), datamodule=dm)
    trained = {s.id for s in trainer.train_dataloader.dataset.samples}
    validated = {s.id for s in trainer.val_dataloaders.dataset.samples}
    assert trainer.current_epoch == 1 and len(trained) == 4 * len(LABELS)
    assert not golden & (trained | validated)


def _manifest(archive: Path) -> DatasetManifest:
    with tarfile.open(archive) as tar:
        return DatasetManifest.from_json(tar.extractfile("manifest.json").read())
