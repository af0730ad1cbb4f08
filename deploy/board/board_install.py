#!/usr/bin/env python3
"""Install, update, stop or report the RDK agent on this board (stdlib only, Python 3.10).

``deploy/deploy_rdk.sh`` rsyncs the code to RDK_DIR/app and then runs, over ssh::

    python3 RDK_DIR/app/deploy/board/board_install.py install --dir RDK_DIR < settings.json

``install`` keeps the venv (RDK_DIR/venv, pip re-run only when requirements/agent.txt changed),
merges the RDK_AGENT_* settings read as JSON from stdin into RDK_DIR/etc/agent.env, installs the
systemd unit (or, where PID 1 is not systemd, uses the rdk-agent-run.sh supervisor), restarts
the agent only when code, settings, venv or unit changed (or it is not running), and waits for
GET /api/v1/healthz. RDK_DIR/data and RDK_DIR/models are never touched. Every step prints what
it changed.
"""

from __future__ import annotations

import argparse
import grp
import hashlib
import json
import os
import platform
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from board_env import DEFAULTS, ENV_FILE, SECRET_KEYS, BoardError, agent_url, http_get, read_env_file, render_env_file
from board_env import write_private as write_file

SUBDIRS = ("app", "data", "models", "etc", "run", "logs", "state", "cache")
FORBIDDEN = ("torch", "lightning", "hydra", "albumentations")
SUPERVISOR = "rdk-agent-run.sh"
LOG_ROTATE_BYTES = 5 * 1024 * 1024
CLEAN_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ")  # what the supervisor inherits


def say(what: str, message: str) -> None:
    """One progress line: ``  what: message``."""
    print(f"  {what + ':':<9}{message}", flush=True)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_hash(root: Path) -> str:
    """sha256 over the relative paths and contents of every file under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(f"{path.relative_to(root)}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


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


# --- venv ------------------------------------------------------------------------------------


def check_requirements(requirements: Path) -> None:
    """The board gets the agent's requirements only: refuse a file that pulls training packages."""
    for number, line in enumerate(requirements.read_text(encoding="utf-8").splitlines(), 1):
        name = line.split("#", 1)[0].strip().lower()
        if name and any(name.startswith(bad) for bad in FORBIDDEN):
            raise BoardError(f"{requirements}:{number}: {line.strip()!r} is a training package; never on the board")


def ensure_venv(rdk_dir: Path, venv_args: list[str], pip_args: list[str]) -> str:
    """Create or refresh RDK_DIR/venv; returns its stamp (what the running agent was built with)."""
    venv, state = rdk_dir / "venv", rdk_dir / "state"
    requirements = rdk_dir / "app/requirements/agent.txt"
    check_requirements(requirements)
    identity = json.dumps({"python": sys.executable, "version": platform.python_version(), "venv_args": venv_args})
    venv_stamp, req_stamp = state / "venv.json", state / "requirements.sha256"
    if not (venv / "bin/python").exists() or _read(venv_stamp) != identity:
        say("venv", f"creating {venv} with {sys.executable} {platform.python_version()} {' '.join(venv_args)}".rstrip())
        shutil.rmtree(venv, ignore_errors=True)
        req_stamp.unlink(missing_ok=True)
        result = run([sys.executable, "-m", "venv", *venv_args, str(venv)], check=False, capture=True)
        if result.returncode != 0:
            hint = " Install it: sudo apt install python3-venv." if "ensurepip" in result.stdout + result.stderr else ""
            raise BoardError(f"python3 -m venv failed: {(result.stderr or result.stdout).strip()}{hint}")
        write_file(venv_stamp, identity, 0o644)
    req_hash = sha256_file(requirements)
    if _read(req_stamp) != req_hash:
        say("venv", "installing requirements/agent.txt (minutes on a board)")
        cmd = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        result = run([*cmd, "-r", str(requirements), *pip_args], check=False)
        if result.returncode != 0:
            raise BoardError(
                f"pip install -r requirements/agent.txt failed with status {result.returncode} (output above); "
                "an offline board can use RDK_PIP_ARGS='--no-index --find-links <wheel dir>'"
            )
        write_file(req_stamp, req_hash, 0o644)
    else:
        say("venv", "unchanged (requirements/agent.txt hash matches)")
    return f"{identity}\n{req_hash}"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


# --- settings --------------------------------------------------------------------------------


def update_env_file(rdk_dir: Path, settings: dict[str, str]) -> None:
    """Merge defaults (for missing keys) and deploy-time ``settings`` into etc/agent.env; an empty value deletes."""
    path = rdk_dir / ENV_FILE
    old = read_env_file(path)
    new = {**DEFAULTS, **old}
    for key, value in settings.items():
        if value:
            new[key] = str(value)
        elif key in DEFAULTS:  # an empty value resets to the default, or removes the key
            new[key] = DEFAULTS[key]
        else:
            new.pop(key, None)
    changed = sorted(k for k in set(new) | set(old) if old.get(k) != new.get(k))
    text = render_env_file(new)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        write_file(path, text)
        shown = ", ".join(k if k in SECRET_KEYS else f"{k}={new[k]}" if k in new else f"{k} removed" for k in changed)
        say("settings", f"{path} updated: {shown or 'reformatted'}")
    else:
        say("settings", f"unchanged ({path})")


# --- init system -----------------------------------------------------------------------------


def detect_init(choice: str) -> str:
    """``systemd`` when asked or when PID 1 is systemd (sd_booted's test), else ``supervisor``."""
    if choice != "auto":
        return choice
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        return "systemd"
    say("init", "no systemd here (PID 1 is not systemd, e.g. a container): using the rdk-agent-run.sh supervisor")
    return "supervisor"


def render_unit(rdk_dir: Path) -> str:
    """The systemd unit text for this RDK_DIR and the deploying user."""
    template = (Path(__file__).resolve().parent / "rdk-agent.service.in").read_text(encoding="utf-8")
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    return template.replace("@RDK_DIR@", str(rdk_dir)).replace("@USER@", user).replace("@GROUP@", group)


def install_unit(rdk_dir: Path, service: str, text: str) -> None:
    """Write /etc/systemd/system/<service>.service when it differs, reload and enable."""
    target = Path(f"/etc/systemd/system/{service}.service")
    if target.exists() and target.read_text(encoding="utf-8") == text:
        say("unit", f"unchanged ({target})")
        return
    staged = rdk_dir / "state" / f"{service}.service"
    write_file(staged, text, 0o644)
    run(["install", "-m", "0644", str(staged), str(target)], privileged=True)
    run(["systemctl", "daemon-reload"], privileged=True)
    run(["systemctl", "enable", service], privileged=True, capture=True)
    say("unit", f"installed {target} (enabled)")


def systemd_pid(service: str) -> int | None:
    """MainPID of the active service, or None."""
    if run(["systemctl", "is-active", "--quiet", service], check=False).returncode != 0:
        return None
    out = run(["systemctl", "show", "-p", "MainPID", "--value", service], check=False, capture=True).stdout
    return int(out.strip() or 0) or None


# --- supervisor (no systemd) -----------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def supervisor_pid(rdk_dir: Path) -> int | None:
    """PID of this RDK_DIR's running rdk-agent-run.sh, or None."""
    text = _read(rdk_dir / "run/supervisor.pid")
    if not text.isdigit() or not _alive(int(text)):
        return None
    try:
        cmdline = Path(f"/proc/{text}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return int(text) if SUPERVISOR.encode() in b" ".join(cmdline) and str(rdk_dir).encode() in cmdline else None


def start_supervisor(rdk_dir: Path) -> int:
    """Start rdk-agent-run.sh in its own session (setsid), logging to logs/agent.log."""
    log_path = rdk_dir / "logs/agent.log"
    if log_path.exists() and log_path.stat().st_size > LOG_ROTATE_BYTES:
        os.replace(log_path, log_path.with_suffix(".log.1"))
    script = rdk_dir / "app/deploy/board" / SUPERVISOR
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            ["bash", str(script), str(rdk_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=rdk_dir,
            env={k: v for k, v in os.environ.items() if k in CLEAN_ENV},
        )
    return proc.pid


def stop_supervisor(rdk_dir: Path, timeout: float = 20.0) -> bool:
    """SIGTERM the supervisor's process group (it and the agent), SIGKILL after ``timeout``."""
    pid = supervisor_pid(rdk_dir)
    if pid is None:
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            agent = _read(rdk_dir / "run/agent.pid")
            if not _alive(pid) and not (agent.isdigit() and _alive(int(agent))):
                return True
            time.sleep(0.1)
    return True


def port_in_use(url: str) -> bool:
    """True when something answers TCP on the agent's address."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1.0):
            return True
    except OSError:
        return False


# --- health ----------------------------------------------------------------------------------


def wait_healthy(url: str, timeout: float, alive) -> float:
    """Poll GET /api/v1/healthz until 200; returns seconds waited, BoardError on timeout."""
    start = time.monotonic()
    last = "no answer"
    while time.monotonic() - start < timeout:
        try:
            status, body = http_get(f"{url}/api/v1/healthz", timeout=3.0)
            if status == 200:
                return time.monotonic() - start
            last = f"HTTP {status}: {body[:200].decode(errors='replace')}"
        except OSError as exc:
            last = str(getattr(exc, "reason", exc))
        if not alive():
            last = "the agent process is not running"
        time.sleep(0.3)
    raise BoardError(f"agent not healthy at {url}/api/v1/healthz after {timeout:.0f} s ({last})")


def log_tail(rdk_dir: Path, mode: str, service: str, lines: int = 40) -> str:
    """The last lines of the agent's log (journal under systemd, logs/agent.log otherwise)."""
    if mode == "systemd":
        cmd = ["journalctl", "-u", service, "-n", str(lines), "--no-pager"]
        return run(cmd, privileged=True, check=False, capture=True).stdout
    path = rdk_dir / "logs/agent.log"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]) if path.exists() else ""


# --- commands --------------------------------------------------------------------------------


def cmd_install(args: argparse.Namespace) -> int:
    """Bring the board to the deployed state; see the module docstring."""
    rdk_dir = args.dir
    for sub in SUBDIRS:
        (rdk_dir / sub).mkdir(parents=True, exist_ok=True)
    settings = json.loads(sys.stdin.read() or "{}") if args.settings_stdin else {}
    venv_stamp = ensure_venv(rdk_dir, shlex.split(args.venv_args), shlex.split(args.pip_args))
    update_env_file(rdk_dir, settings)
    mode = detect_init(args.init)
    unit = render_unit(rdk_dir) if mode == "systemd" else SUPERVISOR
    parts = {
        "code": tree_hash(rdk_dir / "app"),
        "settings": sha256_file(rdk_dir / ENV_FILE),
        "venv": hashlib.sha256(venv_stamp.encode()).hexdigest(),
        "init": hashlib.sha256(f"{mode}\n{unit}".encode()).hexdigest(),
    }
    stamp_path = rdk_dir / "state/running.json"
    try:
        previous = json.loads(_read(stamp_path) or "{}")
    except json.JSONDecodeError:
        previous = {}
    changed = [name for name, value in parts.items() if previous.get(name) != value]
    url = agent_url(rdk_dir)

    if mode == "systemd":
        if stop_supervisor(rdk_dir):
            say("init", "stopped the rdk-agent-run.sh supervisor (now under systemd)")
        install_unit(rdk_dir, args.service, unit)
        running = systemd_pid(args.service) is not None
    else:
        running = supervisor_pid(rdk_dir) is not None

    if changed or not running:
        why = f"changed: {', '.join(changed)}" if changed else "it was not running"
        why = why if previous else "first start"
        if mode == "systemd":
            run(["systemctl", "restart", args.service], privileged=True)
        else:
            stop_supervisor(rdk_dir)
            if port_in_use(url):
                raise BoardError(f"{url} is already in use by another program; stop it or deploy with RDK_AGENT_PORT")
            start_supervisor(rdk_dir)
        say("agent", f"{'restarted' if running else 'started'} ({why})")
    else:
        say("agent", "unchanged, not restarted")

    def alive() -> bool:
        return (systemd_pid(args.service) if mode == "systemd" else supervisor_pid(rdk_dir)) is not None

    try:
        waited = wait_healthy(url, args.health_timeout, alive)
    except BoardError:
        print(f"--- last lines of the agent's log ({mode}) ---\n{log_tail(rdk_dir, mode, args.service)}", flush=True)
        raise
    write_file(stamp_path, json.dumps({**parts, "mode": mode}), 0o644)
    pid = systemd_pid(args.service) if mode == "systemd" else _read(rdk_dir / "run/agent.pid")
    say("health", f"ok at {url}/api/v1/healthz after {waited:.1f} s (agent pid {pid}, {mode})")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop the agent (systemctl stop, or the supervisor's process group)."""
    if detect_init(args.init) == "systemd":
        run(["systemctl", "stop", args.service], privileged=True)
        say("agent", f"stopped ({args.service}.service)")
    else:
        say("agent", "stopped" if stop_supervisor(args.dir) else "was not running")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: ``install`` or ``stop``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("command", choices=("install", "stop"))
    parser.add_argument("--dir", type=Path, required=True, help="RDK_DIR on this board")
    parser.add_argument("--init", choices=("auto", "systemd", "supervisor"), default="auto")
    parser.add_argument("--service", default="rdk-agent", help="systemd unit name")
    parser.add_argument("--venv-args", default="", help="extra python3 -m venv arguments")
    parser.add_argument("--pip-args", default="", help="extra pip install arguments")
    parser.add_argument("--health-timeout", type=float, default=90.0)
    parser.add_argument("--settings-stdin", action="store_true", help="read RDK_AGENT_* settings as JSON on stdin")
    args = parser.parse_args(argv)
    args.dir = args.dir.resolve()
    try:
        return cmd_install(args) if args.command == "install" else cmd_stop(args)
    except BoardError as exc:
        print(f"deploy: error on the board: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
