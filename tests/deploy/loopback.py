"""A loopback "board": Debian's real sshd on 127.0.0.1, a throwaway host key and user key, a temp RDK_DIR.

The deploy scripts reach it exactly as they reach an RDK board (ssh + rsync with RDK_SSH_OPTS),
the board side runs with the machine's python3, and the agent runs from the deployed copy.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SSHD = Path("/usr/sbin/sshd")
DEPLOYED_PATHS = ("rdk_agent", "shared_schema", "packaging", "requirements", "deploy")


def free_port() -> int:
    """A TCP port that is free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LoopbackBoard:
    """Connection settings for the deploy scripts, plus helpers to look at the "board" directly."""

    user: str
    ssh_port: int
    rdk_dir: Path
    ssh_opts: str
    agent_port: int
    token: str
    source: Path = REPO

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a deploy script: this machine's, minus any RDK_* leaking in, plus the board's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RDK_", "MODEL"))}
        env.update(
            RDK_HOST=f"{self.user}@127.0.0.1",
            RDK_PORT=str(self.ssh_port),
            RDK_DIR=str(self.rdk_dir),
            RDK_SSH_OPTS=self.ssh_opts,
            RDK_AGENT_PORT=str(self.agent_port),
            RDK_AGENT_HOST="127.0.0.1",
            RDK_AGENT_TOKEN=self.token,
            RDK_AGENT_CAMERA="synthetic",
            RDK_HEALTH_TIMEOUT="60",
        )
        env.update(PYTHON=sys.executable)
        env.update(extra)
        return env

    def run(self, script: str, timeout: float = 240, **extra: str) -> subprocess.CompletedProcess:
        """Run ``deploy/<script>`` from the source checkout's root, as the Makefile does."""
        return subprocess.run(
            ["bash", str(self.source / "deploy" / script)],
            cwd=self.source,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def agent_pid(self) -> int:
        """PID of the agent the supervisor runs (no systemd here)."""
        return int((self.rdk_dir / "run/agent.pid").read_text().strip())

    def url(self) -> str:
        """The agent's base URL (it listens on loopback in these tests)."""
        return f"http://127.0.0.1:{self.agent_port}"


def said(result: subprocess.CompletedProcess) -> str:
    """A script's stdout with runs of whitespace collapsed (the progress lines are column-aligned)."""
    return " ".join(result.stdout.split())


def get_json(board: LoopbackBoard, path: str, token: str | None = None) -> tuple[int, dict]:
    """GET the agent's ``path`` from the test process (same machine as the "board")."""
    request = urllib.request.Request(board.url() + path)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def snapshot_checkout(dest: Path) -> Path:
    """Copy what deploy-rdk builds its wheel from and ships (and the scripts) out of the working tree.

    Other people edit the shared working tree while the suite runs; deploying from a snapshot keeps
    "nothing changed between two deploys" true for the test, and shows the scripts work from any checkout.
    """
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "tests")
    for name in DEPLOYED_PATHS:
        shutil.copytree(REPO / name, dest / name, ignore=ignore, symlinks=True)
    return dest


def _write_sshd_config(tmp: Path, port: int) -> Path:
    config = tmp / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {tmp / 'host_key'}",
                f"AuthorizedKeysFile {tmp / 'authorized_keys'}",
                f"PidFile {tmp / 'sshd.pid'}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    return config


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@contextmanager
def start_board(tmp: Path):
    """Start sshd on a free loopback port; yield a LoopbackBoard; stop the deployed agent and sshd after."""
    missing = [tool for tool in ("ssh", "ssh-keygen", "rsync") if shutil.which(tool) is None]
    if missing or not SSHD.exists():
        pytest.skip(f"deploy tests need openssh-server and rsync (missing: {', '.join(missing) or SSHD})")
    if os.geteuid() != 0 and not Path("/run/sshd").is_dir():
        pytest.skip("sshd needs its privilege separation dir /run/sshd (create it as root, or run as root)")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    source = snapshot_checkout(tmp / "checkout")
    _keygen(tmp / "host_key")
    _keygen(tmp / "user_key")
    (tmp / "authorized_keys").write_text((tmp / "user_key.pub").read_text())
    port = free_port()
    (tmp / "known_hosts").write_text(f"[127.0.0.1]:{port} {(tmp / 'host_key.pub').read_text()}")
    log = (tmp / "sshd.log").open("wb")
    sshd = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(_write_sshd_config(tmp, port))], stderr=log)
    ssh_opts = (
        f"-F /dev/null -i {tmp / 'user_key'} -o IdentitiesOnly=yes "
        f"-o UserKnownHostsFile={tmp / 'known_hosts'} -o StrictHostKeyChecking=yes"
    )
    board = LoopbackBoard(
        user=subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip(),
        ssh_port=port,
        rdk_dir=tmp / "opt" / "rdk_agent",
        ssh_opts=ssh_opts,
        agent_port=free_port(),
        token="deploy-test-token-0123456789",
        source=source,
    )
    try:
        _wait_for_ssh(board, sshd, tmp / "sshd.log")
        yield board
    finally:
        _stop_agent(board)
        sshd.send_signal(signal.SIGTERM)
        sshd.wait(timeout=10)
        log.close()


def _wait_for_ssh(board: LoopbackBoard, sshd: subprocess.Popen, log: Path) -> None:
    cmd = ["ssh", "-p", str(board.ssh_port), "-o", "BatchMode=yes", *board.ssh_opts.split(), f"{board.user}@127.0.0.1"]
    deadline = time.monotonic() + 15
    while True:
        if sshd.poll() is not None:
            raise RuntimeError(f"sshd exited with {sshd.returncode}: {log.read_text()}")
        result = subprocess.run([*cmd, "true"], capture_output=True, text=True, timeout=15, check=False)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"cannot ssh into the loopback sshd: {result.stderr}\n{log.read_text()}")
        time.sleep(0.2)


def _stop_agent(board: LoopbackBoard) -> None:
    """Stop the deployed agent through the board helper; kill its process group if that fails."""
    helper = board.rdk_dir / "app/deploy/board/board_install.py"
    if helper.exists():
        subprocess.run(["python3", "-B", str(helper), "stop", "--dir", str(board.rdk_dir)], timeout=40, check=False)
    pid_file = board.rdk_dir / "run/supervisor.pid"
    if pid_file.exists():
        with suppress(ProcessLookupError, ValueError):
            os.killpg(int(pid_file.read_text().strip()), signal.SIGKILL)
