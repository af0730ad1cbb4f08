"""make deploy-model against the loopback board: hot reload of a sound model, refusal with the agent's reason,
and models refused on the desktop before anything is copied."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from shared_schema import label_schema_from_names
from tests.deploy.loopback import REPO, LoopbackBoard, get_json, said
from tests.helpers import onnx_models


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def board_model(board: LoopbackBoard) -> Path:
    """The model file the agent watches."""
    return board.rdk_dir / "models/model.onnx"


def test_sound_model_becomes_active_without_restart(loopback_board: LoopbackBoard, deployed, tmp_path) -> None:
    board = loopback_board
    model = onnx_models.write_valid(tmp_path / "model.onnx", dominant="porosity")
    pid = board.agent_pid()

    result = board.run("deploy_model.sh", MODEL=str(model))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "card ok: tiny-test-classifier" in result.stderr
    assert "model: uploaded" in said(result)
    assert "model: active on the board" in said(result)
    assert sha256(board_model(board)) == sha256(model)
    status, info = get_json(board, "/api/v1/model", board.token)
    assert status == 200 and info["active"]["sha256"] == sha256(model) and info["state"] == "active"
    assert board.agent_pid() == pid  # hot reload, no restart
    assert not list(board_model(board).parent.glob(".model.onnx.*"))  # no rsync temp file left behind

    again = board.run("deploy_model.sh", MODEL=str(model))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing transferred" in said(again) and "model: active on the board" in said(again)


def test_agent_refusal_is_reported_and_previous_model_keeps_serving(
    loopback_board: LoopbackBoard, deployed, tmp_path
) -> None:
    board = loopback_board
    good = onnx_models.write_valid(tmp_path / "good.onnx", dominant="spatter")
    assert board.run("deploy_model.sh", MODEL=str(good)).returncode == 0
    # Passes every check the desktop can make, but is bound to another label schema than the board's.
    other = onnx_models.write_valid(tmp_path / "other-schema.onnx", label_schema_from_names(["ok", "crack"]))

    result = board.run("deploy_model.sh", MODEL=str(other), RDK_MODEL_TIMEOUT="60")

    assert result.returncode == 3, result.stdout + result.stderr
    assert "card ok" in result.stderr
    assert "REFUSED by the agent (schema_mismatch" in said(result)
    assert "still serving: tiny-test-classifier" in said(result)
    info = get_json(board, "/api/v1/model", board.token)[1]
    assert info["active"]["sha256"] == sha256(good) and info["state"] == "serving_previous"


@pytest.mark.parametrize(
    ("writer", "message"),
    [
        (onnx_models.write_invalid_card, "the model card is invalid: "),
        (onnx_models.write_no_card, "has no model card (ONNX metadata key 'rdk.model_card')"),
        (onnx_models.write_truncated, "ONNX Runtime cannot load"),
        (onnx_models.write_wrong_input_shape, "input_mismatch: graph input shape ['batch', 3, 48, 48] does not match"),
        (onnx_models.write_nan_output, "smoke_failed: smoke inference failed: model output is not finite"),
        (onnx_models.write_wrong_schema_hash, "is not the hash of its labels"),
    ],
)
def test_unfit_model_is_refused_before_upload(loopback_board: LoopbackBoard, tmp_path, writer, message) -> None:
    board = loopback_board
    before = sha256(board_model(board)) if board_model(board).exists() else None
    model = writer(tmp_path / "model.onnx")

    result = board.run("deploy_model.sh", MODEL=str(model))

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"deploy-model: refusing {model}: " in result.stderr and message in result.stderr
    assert "->" not in said(result)  # never got as far as the copy
    assert (sha256(board_model(board)) if board_model(board).exists() else None) == before


def test_missing_model_argument(loopback_board: LoopbackBoard, tmp_path) -> None:
    unset = loopback_board.run("deploy_model.sh")
    assert unset.returncode == 1 and "MODEL is not set" in unset.stderr and "make deploy-model" in unset.stderr
    absent = loopback_board.run("deploy_model.sh", MODEL=str(tmp_path / "nope.onnx"))
    assert absent.returncode == 1 and "nope.onnx does not exist" in absent.stderr
    model = onnx_models.write_valid(tmp_path / "m.onnx")
    no_host = loopback_board.run("deploy_model.sh", RDK_HOST="", MODEL=str(model))
    assert no_host.returncode == 1 and "RDK_HOST is not set" in no_host.stderr


def test_model_before_agent_is_installed(loopback_board: LoopbackBoard, tmp_path) -> None:
    model = onnx_models.write_valid(tmp_path / "model.onnx")
    result = loopback_board.run("deploy_model.sh", MODEL=str(model), RDK_DIR=str(tmp_path / "empty"))
    assert result.returncode == 1
    assert "no agent installed in" in result.stderr and "run make deploy-rdk first" in result.stderr


def test_check_model_prints_only_the_hash_on_stdout(tmp_path) -> None:
    model = onnx_models.write_valid(tmp_path / "model.onnx")
    result = subprocess.run(
        [sys.executable, str(REPO / "deploy/check_model.py"), str(model)],
        capture_output=True, text=True, check=False, cwd=REPO, env={"PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == sha256(model)
    assert "labels [good, porosity, spatter, gap, undercut]" in result.stderr
