"""make retrain against a real agent: the first run pulls the dataset, trains, deploys through deploy-model's
path and reports the board's verdict (a first model: promoted); the second, with no new labels, has nothing
to do; a few new labels below --min-new-labels still nothing, --dry-run --force would train."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from rdk_agent.camera.synthetic import LABELS
from rdk_agent.launcher import AgentProcess
from shared_schema import read_model_card

pytestmark = pytest.mark.server
REPO = Path(__file__).resolve().parents[2]
PER_LABEL = 8
TINY = ["trainer.max_epochs=1", "export.int8=false", "export.bpu=false", "export.latency_runs=2"]


def capture(agent: AgentProcess, label: str, count: int) -> None:
    """``count`` labelled captures of ``label`` from the synthetic camera."""
    r = requests.post(agent.api("camera/scene"), json={"label": label}, headers=agent.auth, timeout=10)
    assert r.status_code == 200, r.text
    for _ in range(count):
        r = requests.post(agent.api("captures"), json={"label": label}, headers=agent.auth, timeout=30)
        assert r.status_code == 201, r.text


@pytest.fixture
def board(tmp_path):
    """A real agent laid out as a board dir (data/, models/, etc/agent.env) for RDK_HOST=local."""
    if subprocess.call(["which", "rsync"], stdout=subprocess.DEVNULL) != 0:
        pytest.skip("rsync is not installed (apt-get install rsync)")
    rdk = tmp_path / "board"
    agent = AgentProcess(rdk / "data", rdk / "models", config={"inspection": {"poll_interval_s": 0.2}})
    (rdk / "models").mkdir(parents=True)
    agent.start()
    (rdk / "etc").mkdir()
    (rdk / "etc/agent.env").write_text(f'RDK_AGENT_HOST="127.0.0.1"\nRDK_AGENT_PORT="{agent.port}"\n')
    try:
        for label in LABELS:
            capture(agent, label, PER_LABEL)
        yield agent, rdk
    finally:
        agent.stop()


def retrain(agent: AgentProcess, rdk: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m desktop_trainer.retrain`` as make retrain runs it, on the smoke experiment."""
    cmd = [sys.executable, "-m", "desktop_trainer.retrain", "--agent", agent.url, "--experiment", "smoke"]
    cmd += ["--runs-dir", str(tmp_path / "runs"), "--min-new-labels", "5", *args, "--", *TINY]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RDK_", "MLFLOW_"))}
    env.update(
        RDK_HOST="local",
        RDK_DIR=str(rdk),
        RDK_AGENT_TOKEN=agent.token,
        RDK_TRAINER_CACHE=str(tmp_path / "cache"),
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
        RDK_MODEL_TIMEOUT="60",
    )
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_retrain_trains_deploys_then_has_nothing_to_do(board, tmp_path):
    agent, rdk = board

    first = retrain(agent, rdk, tmp_path)

    out = first.stdout + first.stderr
    assert first.returncode == 0, out[-4000:]
    assert f"no champion on the board: training the first model on {PER_LABEL * len(LABELS)} labelled" in out
    assert "retrain: this run" in out and "no champion on the board to compare with" in out
    assert "model: verdict: promoted (first model on this board" in out
    assert "model: serving: weld-classifier sha256 " in out, out[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    card = read_model_card(run / "model.onnx")
    info = requests.get(agent.api("model"), headers=agent.auth, timeout=10).json()
    assert info["champion"]["sha256"] == info["active"]["sha256"]
    assert (rdk / "models/model.onnx").read_bytes() == (run / "model.onnx").read_bytes()
    assert info["champion"]["card"]["dataset_id"] == card.provenance["dataset_id"]
    assert card.provenance["mlflow_run_id"]  # the version on the board leads back to its MLflow run
    assert info["champion"]["card"]["run_id"] == card.provenance["mlflow_run_id"]

    second = retrain(agent, rdk, tmp_path)

    out = second.stdout + second.stderr
    assert second.returncode == 0, out[-4000:]
    assert f"nothing to do: dataset {card.provenance['dataset_id']} has {PER_LABEL * len(LABELS)} labelled" in out
    assert "+0 since the 40 that the champion" in out and "$ -m desktop_trainer" not in out
    capture(agent, "good", 3)

    third = retrain(agent, rdk, tmp_path, "--dry-run")

    assert third.returncode == 0 and "+3 since the 40" in third.stdout, third.stdout + third.stderr
    forced = retrain(agent, rdk, tmp_path, "--dry-run", "--force")
    assert forced.returncode == 0 and "--force: training on 43 labelled samples" in forced.stdout
    assert len(list((tmp_path / "runs").iterdir())) == 1  # neither trained
