"""How the agent runs on the board: a systemd unit, or the rdk-agent-run.sh supervisor where there is no systemd.

Also the crash probe and log tail that deploy-rdk shows when the agent does not come up (stdlib, Python 3.10).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from board_env import read_text, run, say
from board_env import write_private as write_file

SUPERVISOR = "rdk-agent-run.sh"
LOG_ROTATE_BYTES = 5 * 1024 * 1024
CLEAN_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ")  # what the supervisor inherits


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


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def supervisor_pid(rdk_dir: Path) -> int | None:
    """PID of this RDK_DIR's running rdk-agent-run.sh, or None."""
    text = read_text(rdk_dir / "run/supervisor.pid")
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
    (rdk_dir / "run/supervisor.pid").write_text(f"{proc.pid}\n")  # the script writes it too, once it runs
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
            agent = read_text(rdk_dir / "run/agent.pid")
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


def crash_probe(rdk_dir: Path, mode: str, service: str):
    """A callable that says why the agent died since now (or None): fail fast instead of waiting out the timeout."""
    if mode == "systemd":

        def restarts() -> int:
            out = run(["systemctl", "show", "-p", "NRestarts", "--value", service], check=False, capture=True).stdout
            return int(out.strip() or 0)

        baseline = restarts()

        def probe_systemd() -> str | None:
            failed = run(["systemctl", "is-failed", "--quiet", service], check=False).returncode == 0
            return "the service failed or restarted" if failed or restarts() > baseline else None

        return probe_systemd
    log_path = rdk_dir / "logs/agent.log"
    offset = log_path.stat().st_size if log_path.exists() else 0

    def probe_supervisor() -> str | None:
        with log_path.open("rb") as log:
            log.seek(offset if log_path.stat().st_size >= offset else 0)
            exits = re.findall(rb"rdk-agent-run: agent exited with status (\d+)", log.read())
        if exits:
            return f"the agent exited with status {exits[-1].decode()} (the supervisor keeps restarting it)"
        return None if supervisor_pid(rdk_dir) else "the rdk-agent-run.sh supervisor is not running"

    return probe_supervisor


def log_tail(rdk_dir: Path, mode: str, service: str, lines: int = 40) -> str:
    """The last lines of the agent's log (journal under systemd, logs/agent.log otherwise)."""
    if mode == "systemd":
        cmd = ["journalctl", "-u", service, "-n", str(lines), "--no-pager"]
        return run(cmd, privileged=True, check=False, capture=True).stdout
    path = rdk_dir / "logs/agent.log"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]) if path.exists() else ""
