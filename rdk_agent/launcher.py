"""AgentProcess: run ``python -m rdk_agent`` as a child process and wait until it serves.

The one launcher of the tests, the benchmarks and ``scripts/demo.py``. Standard library only, so
it works wherever the agent is installed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

PACKAGE_PARENT = Path(__file__).resolve().parents[1]  # the folder holding this rdk_agent package
LISTEN_RE = re.compile(r"Listening on http://([^:\s]+):(\d+)")
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an HTTP proxy


class AgentProcess:
    """One agent process with its own data dir, models dir and token.

    ``url`` is the base URL (``http://127.0.0.1:PORT``); ``api(path)`` builds ``/api/v1`` URLs;
    ``auth`` is the Bearer header. ``port=0`` lets the first start pick a free port; ``restart()``
    keeps it. The output is collected in memory (``log()``), or appended to ``log_path``; ``detach``
    starts the agent in its own session so that it outlives its parent. The child sees no
    ``RDK_AGENT_*`` variable of the parent's environment, only ``RDK_AGENT_TOKEN`` and ``env``.
    """

    def __init__(
        self,
        data_dir: Path | str,
        models_dir: Path | str,
        token: str | None = None,
        camera: str = "synthetic",
        config: dict | None = None,
        args: list[str] | tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        port: int = 0,
        log_path: Path | None = None,
        detach: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.models_dir = Path(models_dir)
        self.token = token if token is not None else secrets.token_urlsafe(24)
        self.camera = camera
        self.config = config
        self.args = list(args)
        self.env = env or {}
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()  # relative data/models dirs resolve against it
        self.port = port
        self.log_path = log_path
        self.detach = detach
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []
        self._log_offset = 0
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the running agent."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        """The Authorization header carrying the token."""
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def pid(self) -> int:
        """The process id of the started agent."""
        if self.proc is None:
            raise RuntimeError("the agent has not been started")
        return self.proc.pid

    def api(self, path: str) -> str:
        """URL of ``/api/v1/<path>``."""
        return f"{self.url}/api/v1/{path.lstrip('/')}"

    def command(self) -> list[str]:
        """The command line this agent runs (writes the config file when there is a ``config``)."""
        cmd = [
            sys.executable,
            "-m",
            "rdk_agent",
            "--data-dir",
            str(self.data_dir),
            "--models-dir",
            str(self.models_dir),
        ]
        cmd += ["--camera", self.camera, "--host", "127.0.0.1", "--port", str(self.port)]
        if self.config is not None:
            path = self.cwd / self.data_dir.parent / f"{self.data_dir.name}-config.json"
            path.write_text(json.dumps(self.config), encoding="utf-8")
            cmd += ["--config", str(path)]
        return cmd + self.args

    def start(self, timeout: float = 30.0) -> AgentProcess:
        """Start the process and wait until /healthz answers; RuntimeError with its output if it does not."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RDK_AGENT_")}
        pythonpath = os.pathsep.join(p for p in (str(PACKAGE_PARENT), env.get("PYTHONPATH", "")) if p)
        env.update({"RDK_AGENT_TOKEN": self.token, "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"})
        env.update(self.env)
        self.output = []
        log_file: IO[bytes] | None = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log_file = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed here after
            self._log_offset = log_file.tell()
        try:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.cwd,
                env=env,
                stdout=log_file if log_file is not None else subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=log_file is None,
                start_new_session=self.detach,
            )
        finally:
            if log_file is not None:
                log_file.close()
        if self.log_path is None:
            self._reader = threading.Thread(target=self._collect_output, args=(self.proc,), daemon=True)
            self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if self._reader is not None:
                    self._reader.join(timeout=2)  # the last lines
                raise RuntimeError(f"agent exited with {self.proc.returncode}:\n{self.log()}")
            match = LISTEN_RE.search(self.log())
            if match:
                self.port = int(match.group(2))
                if self._healthy():
                    return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"agent did not become healthy in {timeout}s:\n{self.log()}")

    def _collect_output(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout or ():
            self.output.append(line)

    def _healthy(self) -> bool:
        try:
            with _LOCAL.open(f"{self.url}/healthz", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log(self) -> str:
        """Everything the process printed since its last start."""
        if self.log_path is None:
            return "".join(self.output)
        with open(self.log_path, "rb") as fh:
            fh.seek(self._log_offset)
            return fh.read().decode("utf-8", errors="replace")

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
