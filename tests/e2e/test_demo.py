"""The demo's steps in reduced size: real agent, HTTP collection, training, rsync deploy, inspection."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_demo_runs_the_whole_loop(tmp_path):
    if subprocess.call(["which", "rsync"], stdout=subprocess.DEVNULL) != 0:
        pytest.skip("rsync is not installed (apt-get install rsync)")
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "demo.py"),
        "--workdir",
        str(tmp_path),
        "--port",
        str(_free_port()),
        "--per-label",
        "10",
        "--eval-per-label",
        "3",
        "--experiment",
        "smoke",
        "--stop",
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=540)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]

    # Before deployment the rules answer, and say why.
    before = out.split("[3/6]")[1].split("[4/6]")[0]
    assert "engine=rules, reason=no_model" in before
    # The trained model went over the rsync path and the board promoted that exact file (no champion before).
    model = tmp_path / "train" / "model.onnx"
    assert model.exists()
    assert "model: verdict: promoted (first model on this board" in out
    assert (tmp_path / "board" / "models" / "model.onnx").read_bytes() == model.read_bytes()

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == 15
    assert summary["model_ran"] == 15  # the ONNX model ran on every fresh frame
    assert sum(summary["engines"].values()) == 15
    assert 0.0 <= summary["onnx_accuracy"] <= 1.0 and 0.0 <= summary["rules_accuracy"] <= 1.0
    # The fresh frames are parts of another generator seed than the training frames (the agent's camera seed 0).
    assert summary["seed"] == 1000
    for label, acc in summary["per_class"].items():
        assert f"{label:<10} {acc['onnx']:>7.0%} {acc['rules']:>7.0%}" in out  # the per-class table is printed
    assert 0 <= summary["reviewed"] <= 15 and f"{summary['reviewed']} of 15 frames" in out
    # The trainer used every capture the demo collected through the agent (10 per label).
    splits = json.loads((tmp_path / "train" / "metrics.json").read_text())["split_sizes"]
    assert sum(splits[part]["total"] for part in ("train", "val", "test")) == 50
    for label in ("good", "porosity", "spatter", "gap", "undercut"):
        assert sum(splits[part][label] for part in ("train", "val", "test")) == 10
