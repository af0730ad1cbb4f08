"""Health, status, labels, token policy and CLI errors of a real agent process."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import requests

from rdk_agent.launcher import PACKAGE_PARENT


def test_health_status_labels_and_token_policy(agent_process):
    agent = agent_process(token="s3cret-token")
    assert requests.get(f"{agent.url}/healthz", timeout=5).json()["ok"] is True
    assert requests.get(agent.api("healthz"), timeout=5).status_code == 200

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
        r = requests.get(agent.api("status"), headers=headers, timeout=5)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"

    status = requests.get(agent.api("status"), headers=agent.auth, timeout=5).json()
    assert status["camera"]["kind"] == "synthetic"
    assert status["storage"]["integrity"]["ok"] is True
    labels = requests.get(agent.api("labels"), headers=agent.auth, timeout=5).json()
    assert [label["name"] for label in labels["labels"]] == ["good", "porosity", "spatter", "gap", "undercut"]
    assert labels["hash"] == status["labels"]["hash"]

    r = requests.get(agent.api("no/such/thing"), headers=agent.auth, timeout=5)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = requests.put(agent.api("status"), headers=agent.auth, timeout=5)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_cookie_session_from_url_token_and_session_endpoint(agent_process):
    agent = agent_process(token="cookie-token")
    browser = requests.Session()
    r = browser.get(f"{agent.url}/?token=wrong", allow_redirects=False, timeout=5)
    assert r.status_code == 401
    r = browser.get(f"{agent.url}/?token=cookie-token&x=1", allow_redirects=False, timeout=5)
    assert r.status_code == 303 and r.headers["Location"].endswith("/?x=1")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "cookie-token" not in cookie
    assert browser.get(agent.api("status"), timeout=5).status_code == 200

    other = requests.Session()
    assert other.post(agent.api("session"), json={"token": "nope"}, timeout=5).status_code == 401
    assert other.post(agent.api("session"), data="{", headers={"Content-Type": "application/json"}).status_code == 400
    assert other.post(agent.api("session"), json={"token": "cookie-token"}, timeout=5).status_code == 200
    assert other.get(agent.api("labels"), timeout=5).status_code == 200


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


def test_cli_errors_name_the_fix(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"name": "x", "labels": ["only-one"]}))
    (tmp_path / "file").write_text("")
    cases = [
        (["--camera", "webcam"], "bad camera spec"),
        (["--camera", f"replay:{tmp_path / 'missing'}"], "does not exist"),
        (["--labels", str(tmp_path / "bad.json")], "at least two labels"),
        (["--data-dir", str(tmp_path / "file" / "sub")], "choose another --data-dir"),
        (["--config", str(tmp_path / "bad.json")], "unknown setting"),
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


def test_second_agent_on_same_data_dir_is_refused(agent_process):
    agent = agent_process()
    proc = _cli("--data-dir", str(agent.data_dir))
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "another agent process" in stderr
    assert requests.get(f"{agent.url}/healthz", timeout=5).ok
