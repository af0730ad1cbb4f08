"""The agent as a process: its generated token file, a clean SIGTERM, and CLI refusals that name the fix."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
import requests

from rdk_agent.launcher import PACKAGE_PARENT

pytestmark = pytest.mark.server


def test_generated_token_file_is_private_and_stable(agent_process):
    agent = agent_process(env={"RDK_AGENT_TOKEN": ""})
    token_file = agent.data_dir / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert f"/?token={token}" in agent.log() and "Generated a new API token" in agent.log()
    assert requests.get(agent.api("status"), headers={"Authorization": f"Bearer {token}"}, timeout=5).ok
    assert agent.stop() == 0  # SIGTERM is a clean shutdown
    agent.start()
    assert token_file.read_text().strip() == token
    assert "Generated a new API token" not in agent.log()


def _cli(*args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RDK_AGENT_")}
    env["PYTHONPATH"] = str(PACKAGE_PARENT)
    cmd = [sys.executable, "-m", "rdk_agent", "--port", "0", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_cli_errors_name_the_fix(tmp_path, agent_app):
    (tmp_path / "bad.json").write_text(json.dumps({"name": "x", "labels": ["only-one"]}))
    (tmp_path / "file").write_text("")
    running = agent_app()  # holds its data dir: a second agent there must be refused
    cases = [
        (["--camera", "webcam"], "bad camera spec"),
        (["--camera", f"replay:{tmp_path / 'missing'}"], "does not exist"),
        (["--labels", str(tmp_path / "bad.json")], "at least two labels"),
        (["--data-dir", str(tmp_path / "file" / "sub")], "choose another --data-dir"),
        (["--config", str(tmp_path / "bad.json")], "unknown setting"),
        (["--data-dir", str(running.data_dir)], "another agent process"),
    ]
    runs = []
    for i, (args, expected) in enumerate(cases):
        if "--data-dir" not in args:
            args = ["--data-dir", str(tmp_path / f"d{i}"), *args]
        runs.append((args, expected, _cli(*args)))  # in parallel: each run is mostly interpreter start-up
    for args, expected, proc in runs:
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 2, (args, stderr)
        assert expected in stderr and "Traceback" not in stderr, (args, stderr)
    assert running.client.get("/healthz").status_code == 200
