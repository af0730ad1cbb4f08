"""The demo's steps in reduced size: real agent, HTTP collection, two rounds of make retrain (train, rsync deploy,
the board's verdict), shadow inspections, the comparison on fresh frames."""

from __future__ import annotations

import hashlib
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
        "--first-per-label",
        "6",
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
    before = out.split("[3/8]")[1].split("[4/8]")[0]
    assert "engine=rules, reason=no_model" in before
    # Round 1: the trained model went over the rsync path and the board promoted it (no champion before).
    round1 = out.split("[4/8]")[1].split("[5/8]")[0]
    assert "retrain: no champion on the board: training the first model on 30 labelled samples" in round1
    assert "model: verdict: promoted (first model on this board" in round1
    (first,) = (tmp_path / "round1").glob("*/model.onnx")
    # Round 2: retrain sees 20 more labels, trains, and the board gives its verdict against the champion.
    round2 = out.split("[6/8]")[1].split("[7/8]")[0]
    assert "retrain: 50 labelled samples, 20 more than the champion weld-classifier" in round2
    assert "retrain: champion " in round2  # the champion card's test scores beside this run's
    assert any(f"model: verdict: {v} (" in round2 for v in ("promoted", "waiting", "refused")), round2[-3000:]
    (second,) = (tmp_path / "round2").glob("*/model.onnx")
    assert (tmp_path / "board" / "models" / "model.onnx").read_bytes() == second.read_bytes()
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
    rounds = summary["rounds"]
    assert rounds[0]["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert rounds[0]["state"] in ("champion", "retired") and rounds[0]["golden"] is not None
    assert rounds[1]["state"] in ("champion", "challenger", "refused") and rounds[1]["verdict"] is not None
    champion = rounds[1] if rounds[1]["state"] == "champion" else rounds[0]
    assert summary["served_model"] == champion["sha256"]
    # Round 2's trainer used every capture the demo collected through the agent (10 per label).
    splits = json.loads((second.parent / "metrics.json").read_text())["split_sizes"]
    assert sum(splits[part]["total"] for part in ("train", "val", "test")) == 50
    for label in ("good", "porosity", "spatter", "gap", "undercut"):
        assert sum(splits[part][label] for part in ("train", "val", "test")) == 10
