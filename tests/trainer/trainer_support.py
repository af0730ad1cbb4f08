"""Fixtures for the trainer tests: synthetic class folders, a live agent with captures, Hydra compose."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
import requests
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from rdk_agent.camera.synthetic import LABELS, SyntheticWeldGenerator
from rdk_agent.launcher import AgentProcess
from shared_schema import DatasetManifest, FileRef, SampleRecord, default_weld_schema

PER_CLASS = 8
REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "desktop_trainer" / "configs"


def make_cfg(overrides: list[str]) -> DictConfig:
    """Compose ``train`` with the package's configs and the given overrides."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def smoke_overrides(out: Path, source: str, *extra: str) -> list[str]:
    """+experiment=smoke into ``out`` with its own cache, reading ``source``."""
    return [
        "+experiment=smoke",
        f"paths.output_dir={out}",
        f"data.cache_dir={out / 'cache'}",
        f"data.source={source}",
        *extra,
    ]


def write_synthetic_folder(root: Path, per_class: int = PER_CLASS, seed: int = 1, labels=LABELS) -> Path:
    """root/<label>/imgs/NN.jpg with a decoy NN.png mask beside each (the glob must skip it)."""
    gen = SyntheticWeldGenerator(seed=seed, width=128, height=96)
    for label in labels:
        folder = root / label / "imgs"
        folder.mkdir(parents=True)
        for i in range(per_class):
            frame = gen.generate(label)
            cv2.imwrite(str(folder / f"{i:02d}.jpg"), frame.rgb, [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(str(folder / f"{i:02d}.png"), frame.rgb[:, :, 0] * 0)
    return root


def write_rgbd_export(root: Path, per_class: int = 2, seed: int = 1) -> Path:
    """An unpacked agent export (manifest.json, RGB and 16-bit depth PNGs) of small synthetic RGB-D frames."""
    gen = SyntheticWeldGenerator(seed=seed, width=96, height=64)
    records = []
    for label in LABELS:
        for i in range(per_class):
            frame, sample_id = gen.generate(label), f"{label}-{i}"
            refs = []
            for name, image in (("rgb", frame.rgb), ("depth", frame.depth)):
                blob = cv2.imencode(".png", image)[1].tobytes()
                path = root / "samples" / sample_id / f"{name}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(blob)
                refs.append(FileRef(path.relative_to(root).as_posix(), hashlib.sha256(blob).hexdigest(), len(blob)))
            records.append(SampleRecord(sample_id, label, "2024-01-01T00:00:00Z", 96, 64, refs[0], refs[1]))
    manifest = DatasetManifest(f"rgbd-{seed}", "2024-01-01T00:00:00Z", {}, default_weld_schema(), tuple(records))
    (root / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def synthetic_folder(tmp_path_factory) -> Path:
    """Five weld classes, eight small synthetic JPEGs each, masks beside them."""
    return write_synthetic_folder(tmp_path_factory.mktemp("folder"))


@pytest.fixture(scope="module")
def live_agent(tmp_path_factory) -> Iterator[AgentProcess]:
    """A real agent (synthetic camera) holding PER_CLASS captured frames of every label."""
    root = tmp_path_factory.mktemp("agent")
    agent = AgentProcess(root / "data", root / "models").start()
    try:
        for label in LABELS:
            r = requests.post(agent.api("camera/scene"), json={"label": label}, headers=agent.auth, timeout=10)
            assert r.status_code == 200, r.text
            for _ in range(PER_CLASS):
                r = requests.post(agent.api("captures"), json={"label": label}, headers=agent.auth, timeout=30)
                assert r.status_code == 201, r.text
        yield agent
    finally:
        agent.stop()


@pytest.fixture(scope="module")
def live_agent_archive(live_agent) -> bytes:
    """The live agent's dataset as a streamed tar.gz export."""
    r = requests.get(live_agent.api("dataset/export"), params={"format": "tar.gz"}, headers=live_agent.auth, timeout=60)
    assert r.status_code == 200, r.text
    return r.content
