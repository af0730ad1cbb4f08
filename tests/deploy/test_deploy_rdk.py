"""make deploy-rdk against a real sshd on loopback: install, health, idempotence, restart on change, failures.

The agent's wheel is built from packaging/agent and the board's venv is made for real: ``python3 -m venv``
plus ``pip install -c requirements/agent.txt <wheel>`` through this machine's pip configuration (a local
package mirror here), once per session. No ``--system-site-packages`` shortcut: the dev venv's packages
are not in the base interpreter's site-packages, and the point is to prove the board gets a working venv
from the wheel's declared dependencies. The one concession to the 2-core test budget is
RDK_PIP_ARGS=--no-compile (pip skips writing .pyc files).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.deploy.loopback import LoopbackBoard, free_port, get_json, said


def proc_start_time(pid: int) -> int:
    """Kernel start time of ``pid`` (clock ticks since boot): a restart changes it even if a pid is reused."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def inodes(root: Path) -> dict[str, int]:
    """relative path -> inode for every file under ``root`` (rsync replaces a file by renaming a new one)."""
    return {str(p.relative_to(root)): p.stat().st_ino for p in root.rglob("*") if p.is_file()}


def in_venv(board: LoopbackBoard, code: str) -> str:
    """Run ``code`` with the board venv's Python, outside any source tree; returns its stripped stdout."""
    python = str(board.rdk_dir / "venv/bin/python")
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True, cwd="/").stdout.strip()


def test_first_deploy_runs_the_agent_from_its_wheel(loopback_board: LoopbackBoard, deployed) -> None:
    board, out = loopback_board, said(deployed)
    rdk = board.rdk_dir
    assert "no systemd here" in out
    assert "installing rdk_weld_agent-" in out and "pinned by requirements/agent.txt" in out
    assert "agent: started (first start)" in out
    assert "health: ok" in out
    assert "wheels/rdk_weld_agent-" in out and "requirements/agent.txt" in out  # itemized transfer

    status, body = get_json(board, "/api/v1/healthz")
    assert status == 200, body
    pid = board.agent_pid()
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[0].decode() == str(rdk / "venv/bin/python")
    assert [c.decode() for c in cmdline[1:7]] == [
        "-m", "rdk_agent", "--data-dir", str(rdk / "data"), "--models-dir", str(rdk / "models"),
    ]  # fmt: skip
    assert Path(f"/proc/{pid}/cwd").resolve() == rdk
    # The deployed settings file feeds the agent: our token opens the authenticated API.
    assert (rdk / "etc/agent.env").stat().st_mode & 0o777 == 0o600
    assert get_json(board, "/api/v1/status", board.token)[0] == 200
    # Agent requirements only: the board's venv has the runtime packages and no training stack.
    modules = "'flask', 'onnxruntime', 'cv2', 'torch', 'lightning'"
    probe = f"import importlib.util as u; print([m for m in ({modules}) if u.find_spec(m)])"
    assert in_venv(board, probe) == "['flask', 'onnxruntime', 'cv2']"
    # The agent runs from its wheel, installed in the venv: no sources in app/, only what deploy-rdk staged.
    where = "import importlib.metadata as m, rdk_agent as a, shared_schema as s; print(m.version('rdk-weld-agent'))"
    version, *files = in_venv(board, f"{where}; print(a.__file__, s.__file__)").split()
    assert version and all(Path(f).is_relative_to(rdk / "venv/lib") for f in files), files
    assert sorted(p.name for p in (rdk / "app").iterdir()) == ["deploy", "requirements", "wheels"]
    assert [p.name for p in (rdk / "app/wheels").iterdir()] == [f"rdk_weld_agent-{version}-py3-none-any.whl"]
    assert not list((rdk / "app").rglob("__pycache__"))


def test_second_deploy_changes_nothing(loopback_board: LoopbackBoard, deployed) -> None:
    board = loopback_board
    pid = board.agent_pid()
    started = proc_start_time(pid)
    app_files, data_files = inodes(board.rdk_dir / "app"), inodes(board.rdk_dir / "data")
    venv_python = (board.rdk_dir / "venv/bin/python").lstat().st_mtime_ns

    result = board.run("deploy_rdk.sh")

    assert result.returncode == 0, result.stdout + result.stderr
    out = said(result)
    assert "code: unchanged (nothing transferred)" in out  # the rebuilt wheel has the same bytes
    assert "venv: dependencies unchanged" in out and "venv: agent unchanged" in out and "installing" not in out
    assert "settings: unchanged" in out
    assert "agent: unchanged, not restarted" in out
    assert board.agent_pid() == pid and proc_start_time(pid) == started
    assert inodes(board.rdk_dir / "app") == app_files
    assert (board.rdk_dir / "venv/bin/python").lstat().st_mtime_ns == venv_python
    assert data_files and set(data_files.items()) <= set(inodes(board.rdk_dir / "data").items())


def test_changed_code_reinstalls_the_agent_alone(loopback_board: LoopbackBoard, deployed) -> None:
    board = loopback_board
    old_pid = board.agent_pid()
    module = board.source / "rdk_agent/__init__.py"  # the snapshot deploy-rdk builds from, not the working tree
    module.write_text(module.read_text() + "\nDEPLOY_TEST_MARK = 1\n")

    result = board.run("deploy_rdk.sh")

    assert result.returncode == 0, result.stdout + result.stderr
    out = said(result)
    assert "wheels/rdk_weld_agent-" in out  # the same version number, other bytes
    assert "venv: dependencies unchanged" in out and "venv: agent installed from rdk_weld_agent-" in out
    assert "agent: restarted (changed: code)" in out
    assert board.agent_pid() != old_pid
    assert in_venv(board, "import rdk_agent; print(rdk_agent.DEPLOY_TEST_MARK)") == "1"


def test_changed_setting_restarts_and_keeps_the_data(loopback_board: LoopbackBoard, deployed) -> None:
    board = loopback_board
    old_pid = board.agent_pid()
    data_before = inodes(board.rdk_dir / "data")

    result = board.run("deploy_rdk.sh", RDK_AGENT_STREAM_FPS="5")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "RDK_AGENT_STREAM_FPS=5" in said(result)
    assert "agent: restarted (changed: settings)" in said(result)
    assert "code: unchanged" in said(result)
    assert board.agent_pid() != old_pid
    assert get_json(board, "/api/v1/healthz")[0] == 200
    assert set(data_before) <= set(inodes(board.rdk_dir / "data"))
    assert 'RDK_AGENT_STREAM_FPS="5"' in (board.rdk_dir / "etc/agent.env").read_text()


def test_unhealthy_agent_fails_with_its_log(loopback_board: LoopbackBoard, deployed) -> None:
    board = loopback_board

    result = board.run("deploy_rdk.sh", RDK_AGENT_THREADS="0")

    assert result.returncode == 1
    assert "agent not healthy" in result.stderr and "the agent exited with status 2" in result.stderr
    assert "last lines of the agent's log" in said(result)
    assert "threads must be positive" in said(result)  # the agent's own error, from its log
    # Back to a sound setting (an empty value removes the key): the next deploy recovers.
    fixed = board.run("deploy_rdk.sh", RDK_AGENT_THREADS="")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "RDK_AGENT_THREADS removed" in said(fixed) and "health: ok" in said(fixed)


def test_missing_host_is_a_usage_error(loopback_board: LoopbackBoard) -> None:
    result = loopback_board.run("deploy_rdk.sh", RDK_HOST="")
    assert result.returncode == 1
    assert "RDK_HOST is not set" in result.stderr and "make deploy-rdk RDK_HOST=user@board" in result.stderr


def test_unreachable_board(loopback_board: LoopbackBoard) -> None:
    result = loopback_board.run("deploy_rdk.sh", RDK_PORT=str(free_port()))
    assert result.returncode == 1
    assert "cannot reach" in result.stderr and "over ssh" in result.stderr


def test_board_without_python(loopback_board: LoopbackBoard) -> None:
    result = loopback_board.run("deploy_rdk.sh", RDK_PYTHON="/nonexistent/python3")
    assert result.returncode == 1
    assert "no '/nonexistent/python3' on" in result.stderr
