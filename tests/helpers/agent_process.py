"""AgentProcess: a real ``python -m rdk_agent`` subprocess on a free port, for tests over HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTEN_RE = re.compile(r"Listening on http://([^:\s]+):(\d+)")


class AgentProcess:
    """One agent process with its own data dir, models dir and token.

    ``url`` is the base URL (``http://127.0.0.1:PORT``); ``api(path)`` builds ``/api/v1`` URLs;
    ``auth`` is the Bearer header. The first start picks a free port (``--port 0``); ``restart()``
    keeps it.
    """

    def __init__(
        self,
        data_dir: Path,
        models_dir: Path,
        token: str = "test-token",
        camera: str = "synthetic",
        config: dict | None = None,
        args: list[str] | tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.models_dir = Path(models_dir)
        self.token = token
        self.camera = camera
        self.config = config
        self.args = list(args)
        self.env = env or {}
        self.cwd = cwd or REPO_ROOT  # relative data/models dirs resolve against it
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the running agent."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        """The Authorization header carrying the token."""
        return {"Authorization": f"Bearer {self.token}"}

    def api(self, path: str) -> str:
        """URL of ``/api/v1/<path>``."""
        return f"{self.url}/api/v1/{path.lstrip('/')}"

    def command(self) -> list[str]:
        """The command line this agent runs."""
        cmd = [sys.executable, "-m", "rdk_agent", "--data-dir", str(self.data_dir)]
        cmd += [
            "--models-dir",
            str(self.models_dir),
            "--camera",
            self.camera,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if self.config is not None:
            path = self.cwd / self.data_dir.parent / f"{self.data_dir.name}-config.json"
            path.write_text(json.dumps(self.config))
            cmd += ["--config", str(path)]
        return cmd + self.args

    def start(self, timeout: float = 30.0) -> AgentProcess:
        """Start the process and wait until /healthz answers; RuntimeError with its output if it does not."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RDK_AGENT_")}
        env.update({"RDK_AGENT_TOKEN": self.token, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"})
        env.update(self.env)
        self.output = []
        self.proc = subprocess.Popen(
            self.command(), cwd=self.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        listening = threading.Event()
        self._reader = threading.Thread(target=self._read_output, args=(self.proc, listening), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reader.join(timeout=2)
                raise RuntimeError(f"agent exited with {self.proc.returncode}:\n{self.log()}")
            if listening.is_set() and self._healthy():
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"agent did not become healthy in {timeout}s:\n{self.log()}")

    def _read_output(self, proc: subprocess.Popen, listening: threading.Event) -> None:
        for line in proc.stdout:
            self.output.append(line)
            match = LISTEN_RE.search(line)
            if match:
                self.port = int(match.group(2))
                listening.set()

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        """Everything the process printed so far."""
        return "".join(self.output)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int | None:
        """SIGKILL: a power cut, as far as the agent can tell."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait(timeout=10)

    def restart(self, timeout: float = 30.0) -> AgentProcess:
        """Stop (gracefully) and start again on the same port and data dir."""
        self.stop()
        return self.start(timeout=timeout)
