"""make deploy-model against the loopback board: the board's verdict (a first model promoted, a better one
waiting for its shadow frames then promoted, a worse one refused with both golden-set scores side by side,
an unfit one refused with the agent's reason), and models refused on the desktop before anything is copied."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from shared_schema import label_schema_from_names
from tests.deploy.loopback import REPO, LoopbackBoard, get_json, said
from tests.helpers import onnx_models
from tests.helpers.ranked_models import ranked_model_bytes, upload_golden


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def board_model(board: LoopbackBoard) -> Path:
    """The model file the agent watches."""
    return board.rdk_dir / "models/model.onnx"


def test_first_model_is_promoted_without_restart(loopback_board: LoopbackBoard, deployed, tmp_path) -> None:
    board = loopback_board
    model = onnx_models.write_valid(tmp_path / "model.onnx", dominant="porosity")
    pid = board.agent_pid()

    result = board.run("deploy_model.sh", MODEL=str(model))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "card ok: tiny-test-classifier" in result.stderr
    assert "model: uploaded" in said(result)
    assert "model: verdict: promoted (first model on this board" in said(result)
    assert "champion none (no champion on this board before)" in said(result)
    assert "model: serving: tiny-test-classifier" in said(result)
    assert sha256(board_model(board)) == sha256(model)
    status, info = get_json(board, "/api/v1/model", board.token)
    assert status == 200 and info["active"]["sha256"] == sha256(model) and info["state"] == "active"
    assert info["champion"]["sha256"] == sha256(model)
    assert board.agent_pid() == pid  # hot reload, no restart
    assert not list(board_model(board).parent.glob(".model.onnx.*"))  # no rsync temp file left behind

    again = board.run("deploy_model.sh", MODEL=str(model))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing transferred" in said(again) and "model: verdict: promoted" in said(again)


def _scores(result: subprocess.CompletedProcess, role: str) -> tuple[str, str, str]:
    """(accuracy, macro-F1, frames) of ``role``'s row in the printed side-by-side table."""
    row = next(line.split() for line in result.stdout.splitlines() if line.split()[:1] == [role])
    return row[1], row[2], row[3]


def test_golden_set_verdicts_waiting_promoted_refused(loopback_board: LoopbackBoard, deployed, tmp_path) -> None:
    """On the board's own golden set: a better model waits for its shadow frames, then is promoted; a model
    that learned shuffled labels is refused with both scores side by side, and the champion keeps serving."""
    board = loopback_board
    auth = {"Authorization": f"Bearer {board.token}"}
    agent = SimpleNamespace(api=lambda path: f"{board.url()}/api/v1/{path}", auth=auth)
    upload_golden(agent, per_class=3)  # 9 golden frames: good, porosity, spatter
    before = get_json(board, "/api/v1/model", board.token)[1]["champion"]["sha256"]
    better = tmp_path / "better.onnx"
    better.write_bytes(ranked_model_bytes("perfect"))

    waiting = board.run("deploy_model.sh", MODEL=str(better))

    assert waiting.returncode == 0, waiting.stdout + waiting.stderr
    assert "model: verdict: waiting (in shadow: 0/50 frames" in said(waiting), waiting.stdout
    assert _scores(waiting, "challenger") == ("1.0000", "1.0000", "9")
    champion_acc = float(_scores(waiting, "champion")[0])
    assert champion_acc < 0.5  # the porosity-only champion is right on the porosity third only
    assert get_json(board, "/api/v1/model", board.token)[1]["active"]["sha256"] == before
    sha = hashlib.sha256(better.read_bytes()).hexdigest()
    for n in range(400):  # the shadow runs on inspected frames; under load its queue drops some, so go on to 50
        assert requests.post(f"{board.url()}/api/v1/inspect", headers=auth, timeout=30).status_code == 200
        if n >= 49 and n % 10 == 9 and get_json(board, f"/api/v1/models/{sha}", board.token)[1]["verdict"]:
            break

    promoted = board.run("deploy_model.sh", MODEL=str(better), RDK_MODEL_TIMEOUT="60")

    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "nothing transferred" in said(promoted)
    assert "model: verdict: promoted (better on the golden set by the margin" in said(promoted), promoted.stdout
    assert _scores(promoted, "champion")[0] == f"{champion_acc:.4f}" and _scores(promoted, "challenger")[1] == "1.0000"
    assert "model: serving: colour-perfect" in said(promoted)
    worse = tmp_path / "shuffled.onnx"
    worse.write_bytes(ranked_model_bytes("permuted"))

    refused = board.run("deploy_model.sh", MODEL=str(worse), RDK_MODEL_TIMEOUT="60")

    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "model: verdict: refused (worse on the golden set: macro-F1 0.0000 against the champion's 1.0000)" in said(
        refused
    ), refused.stdout
    assert _scores(refused, "champion")[:2] == ("1.0000", "1.0000") and _scores(refused, "challenger")[0] == "0.0000"
    assert "model: serving: colour-perfect" in said(refused)
    info = get_json(board, "/api/v1/model", board.token)[1]
    assert info["active"]["card"]["name"] == "colour-perfect" and info["state"] == "serving_previous"


def test_agent_refusal_is_reported_and_the_champion_keeps_serving(
    loopback_board: LoopbackBoard, deployed, tmp_path
) -> None:
    board = loopback_board
    if get_json(board, "/api/v1/model", board.token)[1]["champion"] is None:
        assert board.run("deploy_model.sh", MODEL=str(onnx_models.write_valid(tmp_path / "g.onnx"))).returncode == 0
    serving = get_json(board, "/api/v1/model", board.token)[1]["active"]
    # Passes every check the desktop can make, but is bound to another label schema than the board's.
    other = onnx_models.write_valid(tmp_path / "other-schema.onnx", label_schema_from_names(["ok", "crack"]))

    result = board.run("deploy_model.sh", MODEL=str(other), RDK_MODEL_TIMEOUT="60")

    assert result.returncode == 3, result.stdout + result.stderr
    assert "card ok" in result.stderr
    assert "model: verdict: refused (schema_mismatch: " in said(result), result.stdout
    assert f"model: serving: {serving['card']['name']} sha256 {serving['sha256'][:12]}" in said(result)
    info = get_json(board, "/api/v1/model", board.token)[1]
    assert info["active"]["sha256"] == serving["sha256"] and info["state"] == "serving_previous"


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
