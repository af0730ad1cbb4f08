#!/usr/bin/env python3
"""Install, update or stop the RDK agent on this board (stdlib only, Python 3.10).

``deploy/deploy_rdk.sh`` rsyncs the agent's wheel (RDK_DIR/app/wheels), its lock
(RDK_DIR/app/requirements/agent.txt) and these scripts to RDK_DIR/app and then runs, over ssh::

    python3 RDK_DIR/app/deploy/board/board_install.py install --dir RDK_DIR < settings.json

``install`` keeps the venv (RDK_DIR/venv): the wheel with its dependencies pinned by the lock when
the lock or the wheel's declared dependencies changed, else the wheel alone when its bytes changed;
merges the RDK_AGENT_* settings read as JSON from stdin into RDK_DIR/etc/agent.env, installs the
systemd unit (or, where PID 1 is not systemd, uses the rdk-agent-run.sh supervisor), restarts
the agent only when code, settings, venv or unit changed (or it is not running), and waits for
GET /api/v1/healthz. RDK_DIR/data and RDK_DIR/models are never touched. Every step prints what
it changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
import shlex
import shutil
import sys
import time
import zipfile
from email.parser import HeaderParser
from pathlib import Path

from board_env import (
    DEFAULTS,
    ENV_FILE,
    SECRET_KEYS,
    BoardError,
    agent_url,
    http_get,
    read_env_file,
    read_text,
    render_env_file,
    run,
    say,
)
from board_env import write_private as write_file
from board_service import (
    SUPERVISOR,
    crash_probe,
    detect_init,
    install_unit,
    log_tail,
    port_in_use,
    render_unit,
    start_supervisor,
    stop_supervisor,
    supervisor_pid,
    systemd_pid,
)

SUBDIRS = ("app", "data", "models", "etc", "run", "logs", "state", "cache")
FORBIDDEN = ("torch", "lightning", "hydra", "albumentations")


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


# --- venv ------------------------------------------------------------------------------------


def check_requirements(requirements: Path) -> None:
    """The board gets the agent's requirements only: refuse a file that pulls training packages."""
    for number, line in enumerate(requirements.read_text(encoding="utf-8").splitlines(), 1):
        name = line.split("#", 1)[0].strip().lower()
        if name and any(name.startswith(bad) for bad in FORBIDDEN):
            raise BoardError(f"{requirements}:{number}: {line.strip()!r} is a training package; never on the board")


def agent_wheel(app: Path) -> Path:
    """The one wheel deploy-rdk sent (RDK_DIR/app/wheels/*.whl)."""
    wheels = sorted((app / "wheels").glob("*.whl"))
    if len(wheels) != 1:
        raise BoardError(f"expected one agent wheel in {app / 'wheels'}, found {len(wheels)}; run make deploy-rdk")
    return wheels[0]


def wheel_requires(wheel: Path) -> list[str]:
    """The wheel's Requires-Dist lines; refuses a wheel that declares a training package."""
    with zipfile.ZipFile(wheel) as archive:
        name = next((n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)), None)
        if name is None:
            raise BoardError(f"{wheel.name} has no .dist-info/METADATA; not a wheel")
        metadata = HeaderParser().parsestr(archive.read(name).decode("utf-8"))
    requires = metadata.get_all("Requires-Dist") or []
    for requirement in requires:
        if any(requirement.strip().lower().startswith(bad) for bad in FORBIDDEN):
            raise BoardError(f"{wheel.name} requires {requirement!r}, a training package; never on the board")
    return requires


def pip_install(venv: Path, args: list[str], pip_args: list[str], what: str) -> None:
    """``pip install`` into the venv; BoardError with a hint for offline boards."""
    cmd = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args, *pip_args]
    result = run(cmd, check=False)
    if result.returncode != 0:
        raise BoardError(
            f"pip install of {what} failed with status {result.returncode} (output above); "
            "an offline board can use RDK_PIP_ARGS='--no-index --find-links <wheel dir>'"
        )


def ensure_venv(rdk_dir: Path, venv_args: list[str], pip_args: list[str]) -> str:
    """Create or refresh RDK_DIR/venv with the agent's wheel; returns the stamp of the venv and its dependencies."""
    venv, state, app = rdk_dir / "venv", rdk_dir / "state", rdk_dir / "app"
    lock = app / "requirements/agent.txt"
    check_requirements(lock)
    wheel = agent_wheel(app)
    requires = wheel_requires(wheel)
    identity = json.dumps({"python": sys.executable, "version": platform.python_version(), "venv_args": venv_args})
    venv_stamp, deps_stamp, wheel_stamp = state / "venv.json", state / "requirements.sha256", state / "wheel.sha256"
    if not (venv / "bin/python").exists() or read_text(venv_stamp) != identity:
        say("venv", f"creating {venv} with {sys.executable} {platform.python_version()} {' '.join(venv_args)}".rstrip())
        shutil.rmtree(venv, ignore_errors=True)
        deps_stamp.unlink(missing_ok=True)
        wheel_stamp.unlink(missing_ok=True)
        result = run([sys.executable, "-m", "venv", *venv_args, str(venv)], check=False, capture=True)
        if result.returncode != 0:
            hint = " Install it: sudo apt install python3-venv." if "ensurepip" in result.stdout + result.stderr else ""
            raise BoardError(f"python3 -m venv failed: {(result.stderr or result.stdout).strip()}{hint}")
        write_file(venv_stamp, identity, 0o644)
    deps = hashlib.sha256(f"{sha256_file(lock)}\n{json.dumps(sorted(requires))}".encode()).hexdigest()
    wheel_hash = sha256_file(wheel)
    if read_text(deps_stamp) != deps:
        say("venv", f"installing {wheel.name} and its dependencies, pinned by requirements/agent.txt (minutes)")
        pip_install(venv, ["-c", str(lock), str(wheel)], pip_args, f"{wheel.name} with requirements/agent.txt")
        write_file(deps_stamp, deps, 0o644)
    else:
        say("venv", "dependencies unchanged (requirements/agent.txt and the wheel's Requires-Dist match)")
    if read_text(wheel_stamp) != wheel_hash:  # the same version number with new code: replace the agent alone
        pip_install(venv, ["--no-deps", "--force-reinstall", str(wheel)], pip_args, wheel.name)
        write_file(wheel_stamp, wheel_hash, 0o644)
        say("venv", f"agent installed from {wheel.name} (sha256 {wheel_hash[:12]})")
    else:
        say("venv", f"agent unchanged ({wheel.name} sha256 {wheel_hash[:12]})")
    return f"{identity}\n{deps}"


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


# --- health ----------------------------------------------------------------------------------


def wait_healthy(url: str, timeout: float, crashed) -> float:
    """Poll GET /api/v1/healthz until 200; returns seconds waited. BoardError on timeout or when ``crashed()``."""
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
        why = crashed()
        if why:
            raise BoardError(f"agent not healthy at {url}/api/v1/healthz: {why}")
        time.sleep(0.3)
    raise BoardError(f"agent not healthy at {url}/api/v1/healthz after {timeout:.0f} s ({last})")


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
        previous = json.loads(read_text(stamp_path) or "{}")
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
        write_file(stamp_path, json.dumps({**parts, "mode": mode}), 0o644)  # what the new process runs with
        say("agent", f"{'restarted' if running else 'started'} ({why})")
    else:
        say("agent", "unchanged, not restarted")

    crashed = crash_probe(rdk_dir, mode, args.service)  # after the restart: systemd resets NRestarts on it
    try:
        waited = wait_healthy(url, args.health_timeout, crashed)
    except BoardError:
        print(f"--- last lines of the agent's log ({mode}) ---\n{log_tail(rdk_dir, mode, args.service)}", flush=True)
        raise
    pid = systemd_pid(args.service) if mode == "systemd" else read_text(rdk_dir / "run/agent.pid")
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
