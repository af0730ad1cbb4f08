"""A live agent over HTTP: incremental verified sync, corruption refused then repaired, smoke training
from the agent and from its exported archive, and a 2-process CPU DDP run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests
import yaml

from desktop_trainer.data.agent import sync_agent
from desktop_trainer.data.cache import ObjectCache
from desktop_trainer.data.samples import DataError
from desktop_trainer.train import run
from rdk_agent.camera.synthetic import LABELS
from shared_schema import read_model_card
from tests.trainer.trainer_support import PER_CLASS, REPO_ROOT, make_cfg, smoke_overrides


def _agent_schema_hash(agent) -> str:
    return requests.get(agent.api("dataset/manifest"), headers=agent.auth, timeout=10).json()["label_schema"]["hash"]


def test_sync_is_incremental_verified_and_resumable(live_agent, tmp_path):
    cache = ObjectCache(tmp_path)
    ds = sync_agent(live_agent.url, cache, token=live_agent.token, progress=False)
    assert ds.counts() == {label: PER_CLASS for label in LABELS}
    assert ds.schema.hash == _agent_schema_hash(live_agent)
    stamps = {s.rgb_path: s.rgb_path.stat().st_mtime_ns for s in ds.samples}
    victim = ds.samples[5].rgb_path
    good = victim.read_bytes()
    victim.unlink()
    part = victim.with_name(victim.name + ".part")
    part.write_bytes(good[: len(good) // 2])  # an interrupted download: resumed with a Range request
    again = sync_agent(live_agent.url, cache, token=live_agent.token, progress=False)
    assert victim.read_bytes() == good and not part.exists()
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items() if p != victim)  # nothing else re-fetched
    assert again.samples == ds.samples


def test_corrupt_partial_download_is_refetched_once(live_agent, tmp_path):
    cache = ObjectCache(tmp_path)
    manifest_sample = sync_agent(live_agent.url, cache, token=live_agent.token, progress=False).samples[0]
    good = manifest_sample.rgb_path.read_bytes()
    manifest_sample.rgb_path.unlink()
    part = manifest_sample.rgb_path.with_name(manifest_sample.rgb_path.name + ".part")
    part.write_bytes(b"garbage" * 10)
    sync_agent(live_agent.url, cache, token=live_agent.token, progress=False)
    assert manifest_sample.rgb_path.read_bytes() == good
    rotten = bytearray(good)
    rotten[len(rotten) // 2] ^= 0xFF  # bit rot in the cache: same size, other content
    manifest_sample.rgb_path.write_bytes(bytes(rotten))
    sync_agent(live_agent.url, cache, token=live_agent.token, progress=False)
    assert manifest_sample.rgb_path.read_bytes() == good


def test_corrupted_agent_file_is_refused_then_repaired(live_agent, tmp_path):
    record = requests.get(live_agent.api("dataset/manifest"), headers=live_agent.auth, timeout=10).json()["samples"][2]
    stored = live_agent.data_dir / record["files"]["rgb"]["path"]
    original = stored.read_bytes()
    stored.write_bytes(original[:-16] + bytes(16))  # same size, wrong content: bit rot on the board
    try:
        with pytest.raises(DataError, match=f"sample {record['id']} .* failed sha256 verification twice"):
            sync_agent(live_agent.url, ObjectCache(tmp_path), token=live_agent.token, progress=False)
    finally:
        stored.write_bytes(original)
    ds = sync_agent(live_agent.url, ObjectCache(tmp_path), token=live_agent.token, progress=False)
    assert len(ds.samples) == len(LABELS) * PER_CLASS


def test_wrong_token_is_a_clear_error(live_agent, tmp_path):
    with pytest.raises(DataError, match="answered 401"):
        sync_agent(live_agent.url, ObjectCache(tmp_path), token="wrong", progress=False)


def test_smoke_training_from_a_live_agent(live_agent, tmp_path):
    cfg = make_cfg(smoke_overrides(tmp_path, live_agent.url, f"data.token={live_agent.token}", "export.bpu=false"))
    metrics = run(cfg)
    card = read_model_card(tmp_path / "model.onnx")
    assert card.label_schema_hash == _agent_schema_hash(live_agent)
    assert list(card.labels) == list(LABELS)
    assert metrics["parity"]["images"] == metrics["split_sizes"]["val"]["total"] > 0
    assert metrics["parity"]["top1_mismatches"] == 0 and metrics["parity"]["max_abs_diff"] <= 1e-4


def test_rgbd_smoke_training_from_an_exported_archive(live_agent_archive, tmp_path, synthetic_folder):
    """The archive source, with depth as a fourth channel."""
    archive = tmp_path / "export.tar.gz"
    archive.write_bytes(live_agent_archive)
    metrics = run(
        make_cfg(
            smoke_overrides(
                tmp_path / "run",
                str(archive),
                "data.use_depth=true",
                "trainer.max_epochs=1",
                "export.calibration_images=4",
            )
        )
    )
    assert metrics["dataset"]["samples"] == len(LABELS) * PER_CLASS
    card = read_model_card(tmp_path / "run" / "model.onnx")
    assert card.label_schema_hash == metrics["label_schema_hash"] == card.label_schema["hash"]
    assert card.input.channels == "rgbd" and len(card.input.mean) == 4
    assert metrics["parity"]["top1_mismatches"] == 0
    bpu = yaml.safe_load((tmp_path / "run" / "bpu" / "config.yaml").read_text())["input_parameters"]
    assert bpu["input_shape"] == "1x4x64x64" and bpu["norm_type"] == "no_preprocess"
    # 4 asked for, but every one of the 5 classes gets at least one calibration image
    assert len(list((tmp_path / "run" / "bpu" / "calibration").glob("*.bin"))) == len(LABELS)
    with pytest.raises(DataError, match=r"data.use_depth=true but sample .* has no depth map"):
        run(make_cfg(smoke_overrides(tmp_path / "rgb", str(synthetic_folder), "data.glob=*.jpg", "data.use_depth=1")))


@pytest.mark.slow
def test_two_process_cpu_ddp(live_agent_archive, tmp_path):
    archive = tmp_path / "export.tar"
    archive.write_bytes(live_agent_archive)
    run_dir = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "desktop_trainer",
        "+experiment=smoke",
        f"data.source={archive}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "trainer.strategy=ddp",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "export.bpu=false",
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=420)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "MEMBER: 2/2" in output
    assert (run_dir / "model.onnx").is_file() and "make deploy-model RDK_HOST=" in output
