"""Helpers shared by the board-side scripts: agent.env, the agent's URL and token, HTTP, commands (stdlib, 3.10)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

# rdk_agent comes from the agent's wheel that deploy-rdk ships to RDK_DIR/app/wheels (a pure-Python wheel
# imports as a zip), or, for these scripts in a checkout (make demo's local board), from the checkout.
APP_DIR = Path(__file__).resolve().parents[2]
for _entry in (APP_DIR, *sorted(APP_DIR.glob("wheels/*.whl"))):
    if str(_entry) not in sys.path:
        sys.path.insert(0, str(_entry))
from rdk_agent.durable import atomic_write  # noqa: E402 - stdlib only, runs on the system Python

ENV_FILE = "etc/agent.env"
TOKEN_FILE = "data/token"
ENV_KEY_RE = re.compile(r"^RDK_AGENT_[A-Z0-9_]+$")
UNSAFE_VALUE_RE = re.compile(r'["\\$`\n\r]')
DEFAULTS = {"RDK_AGENT_HOST": "0.0.0.0", "RDK_AGENT_PORT": "8080", "RDK_AGENT_CAMERA": "synthetic"}
SECRET_KEYS = {"RDK_AGENT_TOKEN"}


class BoardError(RuntimeError):
    """A deployment step failed; the message says what and how to fix it."""


def read_env_file(path: Path) -> dict[str, str]:
    """Parse ``KEY=value`` / ``KEY="value"`` lines; comments and blank lines are skipped."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise BoardError(f"{path}:{number}: expected KEY=value, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def render_env_file(values: dict[str, str]) -> str:
    """The text of agent.env: readable both as a systemd EnvironmentFile and by a POSIX shell."""
    lines = [
        "# RDK agent settings (RDK_AGENT_<FIELD>, read by the agent itself). Managed by deploy-rdk:",
        "# keys passed at deploy time overwrite these; keys you add here are kept.",
    ]
    for key in sorted(values):
        check_env_entry(key, values[key])
        lines.append(f'{key}="{values[key]}"')
    return "\n".join(lines) + "\n"


def check_env_entry(key: str, value: str) -> None:
    """Refuse keys outside RDK_AGENT_* and values that the two env-file dialects would read differently."""
    if not ENV_KEY_RE.match(key):
        raise BoardError(f"setting {key!r} is not an RDK_AGENT_<FIELD> name")
    if UNSAFE_VALUE_RE.search(value):
        raise BoardError(f"{key}: the value must not contain quotes, backslashes, '$', backticks or newlines")


def agent_url(rdk_dir: Path) -> str:
    """Where the agent answers on the board itself (loopback when it listens on all interfaces)."""
    env = read_env_file(rdk_dir / ENV_FILE)
    host = env.get("RDK_AGENT_HOST", DEFAULTS["RDK_AGENT_HOST"])
    port = env.get("RDK_AGENT_PORT", DEFAULTS["RDK_AGENT_PORT"])
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def agent_token(rdk_dir: Path, given: str = "") -> str:
    """The API token: ``given``, else RDK_AGENT_TOKEN from agent.env, else the agent's own data/token."""
    if given.strip():
        return given.strip()
    from_env = read_env_file(rdk_dir / ENV_FILE).get("RDK_AGENT_TOKEN", "").strip()
    if from_env:
        return from_env
    try:
        return (rdk_dir / TOKEN_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def http_get(url: str, token: str = "", timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url``; returns (status, body). Connection failures raise OSError."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace ``path`` with ``text`` with permissions ``mode``, durably (see ``rdk_agent.durable.atomic_write``)."""
    atomic_write(path, text.encode("utf-8"), mode)


def say(what: str, message: str) -> None:
    """One progress line: ``  what: message``."""
    print(f"  {what + ':':<10}{message}", flush=True)


def run(cmd: list[str], *, privileged: bool = False, check: bool = True, capture: bool = False):
    """Run ``cmd`` (through ``sudo -n`` when ``privileged`` and not root)."""
    if privileged and os.geteuid() != 0:
        cmd = ["sudo", "-n", *cmd]
    result = subprocess.run(cmd, text=True, capture_output=capture, check=False)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip() if capture else "see the output above"
        hint = " (needs root or passwordless sudo)" if privileged and os.geteuid() != 0 else ""
        raise BoardError(f"{' '.join(cmd)} failed with status {result.returncode}{hint}: {detail}")
    return result


def read_text(path: Path) -> str:
    """Stripped text of ``path``, or "" when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
