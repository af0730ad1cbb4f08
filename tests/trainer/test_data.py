"""Data sources, the stable split, and the errors a user meets first (no training here)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from desktop_trainer.data.archive import load_archive
from desktop_trainer.data.cache import ObjectCache, dataset_from_manifest
from desktop_trainer.data.folder import load_folder
from desktop_trainer.data.samples import DataError, LocalDataset, Sample, merge
from desktop_trainer.data.split import report_lines, split_samples
from desktop_trainer.models.backbones import BACKBONES, BackboneError, build_backbone
from desktop_trainer.train import build_datamodule
from shared_schema import DatasetManifest, FileRef, SampleRecord, label_schema_from_names
from shared_schema.split import SPLITS, split_of
from tests.trainer.trainer_support import PER_CLASS, REPO_ROOT, make_cfg, write_synthetic_folder


def _samples(label: str, n: int, start: int = 0) -> list[Sample]:
    return [Sample(id=f"{label}-{i}", label=label, rgb_path=Path(f"/x/{label}/{i}.png")) for i in range(start, n)]


def test_folder_source_globs_recursively_and_orders_non_defect_first(synthetic_folder):
    ds = load_folder(synthetic_folder, glob="*.jpg")
    assert ds.schema.names[0] == "good" and not ds.schema.get("good").is_defect
    assert ds.counts() == {name: PER_CLASS for name in ds.schema.names}
    assert all(s.rgb_path.suffix == ".jpg" for s in ds.samples)  # the masks beside them are skipped


def test_empty_class_folder_is_a_clear_error(tmp_path):
    write_synthetic_folder(tmp_path, per_class=2, labels=("good", "gap"))
    (tmp_path / "spatter").mkdir()
    with pytest.raises(DataError, match=r"class 'spatter' has 0 images matching '\*\.jpg'"):
        load_folder(tmp_path, glob="*.jpg")


def _where(split) -> dict[str, str]:
    return {s.id: name for name in SPLITS for s in getattr(split, name)}


def _keys_in(split_name: str, prefix: str, count: int) -> list[str]:
    """The first ``count`` keys ``prefix-<i>`` whose split (default fractions) is ``split_name``."""
    keys = (f"{prefix}-{i}" for i in range(10_000))
    return [k for k in keys if split_of(k, 0.15, 0.15) == split_name][:count]


def test_existing_samples_keep_their_split_as_the_dataset_grows():
    labels = ["good", "gap", "rare"]
    # "rare" starts with 6 samples that all hash to train: the case a fix-up would "repair" by moving one.
    rare = [Sample(id=key, label="rare", rgb_path=Path(f"/x/{key}")) for key in _keys_in("train", "early", 6)]
    grouped = [Sample(id=f"w{i}", label="gap", rgb_path=Path(f"/x/w{i}"), group_key=f"weld{i // 3}") for i in range(30)]
    small = _samples("good", 60) + _samples("gap", 20) + rare + grouped
    first = split_samples(small, labels)
    assert first == split_samples(list(reversed(small)), labels)
    assert first.sizes(labels)["test"]["rare"] == 0 and any("'rare'" in w for w in first.warnings)
    before = _where(first)

    grown = (
        small
        + _samples("good", 400, start=60)
        + _samples("gap", 300, start=20)
        + _samples("rare", 200, start=0)  # rare-0.. includes ids hashing to val and test
        + [Sample(id=f"n{i}", label="rare", rgb_path=Path(f"/x/n{i}"), group_key=f"weld{i}") for i in range(40)]
    )
    second = split_samples(grown, labels)
    after = _where(second)
    assert {s: after[s] for s in before} == before
    assert all(after[s.id] == split_of(s.group, 0.15, 0.15) for s in grown)
    assert second.sizes(labels)["test"]["rare"] > 0 and not second.warnings
    assert 0.1 < second.sizes(labels)["test"]["total"] / len(grown) < 0.2


def test_grouped_samples_never_straddle_splits():
    samples = [
        Sample(id=f"s{i}", label="good" if i % 2 else "gap", rgb_path=Path(f"/x/{i}"), meta={"group": f"weld{i // 4}"})
        for i in range(80)
    ] + [
        Sample(id=f"r{i}", label=("good", "gap")[i % 2], rgb_path=Path(f"/r/{i}"), group_key=f"run{i // 5}")
        for i in range(100)
    ]
    split = split_samples(samples, ["good", "gap"])
    groups = split.groups()
    assert all(groups[name] for name in SPLITS)  # every split holds groups, so a straddle could happen
    for name in SPLITS:
        others = {g for n in SPLITS if n != name for g in groups[n]}
        assert not set(groups[name]) & others
        assert {s.group for s in getattr(split, name)} == set(groups[name])
    runs = {s.group for s in samples if s.group_key}
    assert len(runs) == 20 and all(len({s.label for s in samples if s.group == r}) == 2 for r in runs)
    summary = split.summary(["good", "gap"])
    assert sum(summary["groups"][n]["count"] for n in SPLITS) == 20 + 20
    assert summary["groups"]["test"]["names"] == groups["test"]


def test_a_class_with_too_few_groups_gets_a_message_with_its_count(caplog):
    labels = ["good", "rare"]
    runs = _keys_in("train", "run", 2)
    rare = [Sample(id=f"r{i}", label="rare", rgb_path=Path(f"/x/r{i}"), group_key=runs[i % 2]) for i in range(12)]
    with caplog.at_level(logging.WARNING, logger="desktop_trainer.data.split"):
        split = split_samples(_samples("good", 200) + rare, labels)
    assert split.sizes(labels)["train"]["rare"] == 12  # nothing was moved out of train
    (message,) = split.warnings
    assert "class 'rare' has 2 group(s)" in message and "falls in test or val" in message
    assert "about 10 more group(s)" in message  # 1/0.15 + 1/0.15 - 1/0.3
    assert message in caplog.text
    assert split.summary(labels)["warnings"] == [message]
    assert split.summary(labels)["per_class"]["rare"] == {"train": 2, "val": 0, "test": 0}
    only_test = split_samples(_samples("good", 200) + rare, labels, val_fraction=0.0, test_fraction=0.25)
    assert "about 4 more group(s)" in only_test.warnings[0] and "val" not in only_test.warnings[0]


def test_report_lines_list_groups_per_split_and_the_warnings():
    labels = ["good", "rare"]
    runs = _keys_in("train", "run", 2)
    rare = [Sample(id=f"r{i}", label="rare", rgb_path=Path(f"/x/r{i}"), group_key=runs[i % 2]) for i in range(6)]
    split = split_samples(_samples("good", 100) + rare, labels)
    text = "\n".join(report_lines(split.summary(labels), split.sizes(labels), shown=5))
    test_groups = split.groups()["test"]
    assert f"- test: {len(test_groups)} group(s)" in text and f"`{test_groups[0]}`" in text
    assert f"and {len(test_groups) - 5} more (all in metrics.json)" in text
    assert "| rare | 2 | 0 | 0 |" in text and "**warning**: class 'rare' has 2 group(s)" in text


def _write_runs(root: Path) -> None:
    """good/ and gap/ holding run folders (run shared by both classes) and loose files."""
    for label in ("good", "gap"):
        for run in range(6):
            folder = root / label / f"run{run:02d}" / "cam"
            folder.mkdir(parents=True)
            for i in range(3):
                (folder / f"{i}.jpg").write_bytes(b"x")
        (root / label / "loose.jpg").write_bytes(b"x")


def test_folder_source_groups_by_run_subfolder(tmp_path):
    _write_runs(tmp_path)
    grouped = load_folder(tmp_path, glob="*.jpg", group_by="subfolder")
    by_id = {s.id: s for s in grouped.samples}
    assert by_id["good/run03/cam/1.jpg"].group == by_id["gap/run03/cam/2.jpg"].group == "run03"
    assert by_id["good/loose.jpg"].group == "good/loose.jpg"
    assert {s.group for s in grouped.samples} == {f"run{r:02d}" for r in range(6)} | {"good/loose.jpg", "gap/loose.jpg"}
    plain = load_folder(tmp_path, glob="*.jpg")
    assert all(s.group == s.id for s in plain.samples)
    with pytest.raises(DataError, match=r"data\.group_by must be one of none, subfolder, got 'run'"):
        load_folder(tmp_path, glob="*.jpg", group_by="run")

    cfg = make_cfg([f"data.source={tmp_path}", "data.glob=*.jpg", "data.group_by=subfolder"])
    dm = build_datamodule(cfg)
    where = {s.id: name for name in SPLITS for s in getattr(dm.split, name)}
    for run in range(6):
        assert len({where[s.id] for s in grouped.samples if s.group == f"run{run:02d}"}) == 1
    assert sum(len(names) for names in dm.split.groups().values()) == 8


def test_manifest_group_reaches_the_sample(tmp_path):
    ref = FileRef("samples/a/rgb.png", "a" * 64, 1)
    records = (
        SampleRecord("a", "good", "t", 4, 4, ref, group="part-17"),
        SampleRecord("b", "good", "t", 4, 4, ref, meta={"group": "legacy-3"}),
        SampleRecord("c", "good", "t", 4, 4, ref),
    )
    manifest = DatasetManifest("d", "t", {}, label_schema_from_names(["good", "gap"]), records)
    ds = dataset_from_manifest(DatasetManifest.from_json(manifest.to_json()), ObjectCache(tmp_path), "x")
    assert [s.group for s in ds.samples] == ["part-17", "legacy-3", "c"]


def test_the_cli_names_a_missing_source_and_a_depthless_one(tmp_path):
    """Errors raised while the config builds the data module reach the user as they are, with status 2."""
    base = [sys.executable, "-m", "desktop_trainer", "+experiment=smoke", f"hydra.run.dir={tmp_path / 'run'}"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    unset = subprocess.run(base, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert unset.returncode == 2 and unset.stderr.strip().endswith(
        "error: data.source is not set: give an agent URL, an exported .tar/.tar.gz or a class folder"
    )
    folder = write_synthetic_folder(tmp_path / "folder", per_class=2, labels=("good", "gap"))
    depthless = [*base, f"data.source={folder}", "data.glob=*.jpg", "data.use_depth=true"]
    proc = subprocess.run(depthless, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "error: data.use_depth=true but sample" in proc.stderr and "InstantiationException" not in proc.stderr


def test_too_few_samples_names_the_class_and_count():
    with pytest.raises(DataError, match=r"class 'rare' has 2 sample\(s\); at least 5"):
        split_samples(_samples("good", 30) + _samples("rare", 2), ["good", "rare"])


def test_merge_refuses_different_label_schemas():
    a = LocalDataset(label_schema_from_names(["good", "gap"]), (), "a", ("http://a",))
    b = LocalDataset(label_schema_from_names(["good", "crack"]), (), "b", ("http://b",))
    with pytest.raises(DataError, match="label schemas differ"):
        merge([a, b])


def test_archive_with_a_tampered_file_is_refused(tmp_path, live_agent_archive):
    data = live_agent_archive
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    manifest = DatasetManifest.from_json(members[0][1])
    victim = manifest.samples[3]
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        for member, blob in members:
            if member.name == victim.rgb.path:
                blob = blob[:-10] + b"0123456789"
            tar.addfile(member, io.BytesIO(blob))
    with pytest.raises(DataError, match=f"sample {victim.id} file {victim.rgb.path} does not match its sha256"):
        load_archive(bad, ObjectCache(tmp_path / "cache"))
    good = tmp_path / "good.tar.gz"
    good.write_bytes(data)
    ds = load_archive(good, ObjectCache(tmp_path / "cache"))
    assert len(ds.samples) == len(manifest.samples) and ds.dataset_id == manifest.dataset_id
    assert json.loads(members[0][1])["label_schema"]["hash"] == ds.schema.hash


def test_unknown_backbone_lists_the_choices():
    with pytest.raises(BackboneError, match="unknown backbone 'vgg99'; choose one of: " + ", ".join(BACKBONES)):
        build_backbone("vgg99", num_classes=3)


@pytest.mark.parametrize("name", BACKBONES)
def test_backbones_take_four_channels_with_depth_initialised_from_rgb(name):
    model = build_backbone(name, num_classes=5, in_channels=4, image_size=64)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.shape[1] == 4
    torch.testing.assert_close(conv.weight[:, 3], conv.weight[:, :3].mean(dim=1))
    assert model.eval()(torch.zeros(2, 4, 64, 64)).shape == (2, 5)


def test_pretrained_lite0_loads_the_shipped_weights_and_a_local_file(tmp_path):
    scratch = build_backbone("efficientnet_lite0", num_classes=3, pretrained=False, image_size=64)
    shipped = build_backbone("efficientnet_lite0", num_classes=3, pretrained=True, image_size=64)
    assert not torch.equal(scratch._conv_stem.weight, shipped._conv_stem.weight)
    path = tmp_path / "weights.pth"
    torch.save(shipped.state_dict(), path)
    local = build_backbone("efficientnet_lite0", num_classes=3, pretrained=str(path), image_size=64)
    torch.testing.assert_close(local._conv_stem.weight, shipped._conv_stem.weight)
    with pytest.raises(BackboneError, match="does not fit this backbone"):
        build_backbone("resnet18", num_classes=3, pretrained=str(path))
