"""Data sources, the stable split, and the errors a user meets first (no training here)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import torch

from desktop_trainer.data.archive import load_archive
from desktop_trainer.data.cache import ObjectCache
from desktop_trainer.data.folder import load_folder
from desktop_trainer.data.samples import DataError, LocalDataset, Sample, merge
from desktop_trainer.data.split import split_samples
from desktop_trainer.models.backbones import BACKBONES, BackboneError, build_backbone
from shared_schema import DatasetManifest, label_schema_from_names
from tests.trainer.trainer_support import PER_CLASS, write_synthetic_folder


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


def test_split_is_deterministic_stratified_and_stable_as_data_grows():
    labels = ["good", "gap", "rare"]
    small = _samples("good", 60) + _samples("gap", 20) + _samples("rare", 6)
    first = split_samples(small, labels)
    assert first == split_samples(list(reversed(small)), labels)
    sizes = first.sizes(labels)
    for split in ("train", "val", "test"):
        assert all(sizes[split][label] >= 1 for label in labels), sizes
    grown = small + _samples("good", 200, start=60) + _samples("gap", 80, start=20)
    second = split_samples(grown, labels)
    where = {s.id: name for name in ("train", "val", "test") for s in getattr(second, name)}
    big_classes = [s for s in small if s.label != "rare"]  # the fix-up only touches tiny classes
    assert all(
        where[s.id] == name for name in ("train", "val", "test") for s in getattr(first, name) if s in big_classes
    )
    assert 0.1 < second.sizes(labels)["test"]["total"] / len(grown) < 0.2


def test_split_keeps_a_group_together():
    samples = [
        Sample(id=f"s{i}", label="good" if i % 2 else "gap", rgb_path=Path(f"/x/{i}"), meta={"group": f"weld{i // 4}"})
        for i in range(80)
    ]
    split = split_samples(samples, ["good", "gap"])
    for name in ("train", "val", "test"):
        other = {s.group for n in ("train", "val", "test") if n != name for s in getattr(split, n)}
        assert not {s.group for s in getattr(split, name)} & other


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
