"""The board-side pieces on their own: the systemd unit (checked by systemd-analyze), agent.env, the lock, the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile

import pytest

from tests.deploy.loopback import REPO


@pytest.fixture
def board_modules(monkeypatch):
    """Import the board scripts' modules the way they run on the board (their folder on sys.path)."""
    monkeypatch.syspath_prepend(str(REPO / "deploy/board"))
    import board_env
    import board_install
    import board_service

    return board_env, board_service, board_install


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (package systemd)")
def test_rendered_unit_passes_systemd_analyze_verify(board_modules, tmp_path) -> None:
    _, service, _ = board_modules
    rdk = tmp_path / "rdk_agent"
    for sub in ("app", "etc", "venv/bin"):
        (rdk / sub).mkdir(parents=True)
    (rdk / "etc/agent.env").write_text('RDK_AGENT_PORT="8080"\n')
    (rdk / "venv/bin/python").symlink_to(shutil.which("python3"))
    unit = service.render_unit(rdk)
    path = tmp_path / "rdk-agent.service"
    path.write_text(unit)

    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, check=False)

    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    lines = unit.splitlines()
    assert f"ExecStart={rdk}/venv/bin/python -m rdk_agent --data-dir {rdk}/data --models-dir {rdk}/models" in lines
    assert f"EnvironmentFile={rdk}/etc/agent.env" in lines and f"WorkingDirectory={rdk}" in lines
    assert not any(line.startswith("Environment=PYTHONPATH") for line in lines)  # the agent comes from the venv
    assert "Restart=on-failure" in lines and "WantedBy=multi-user.target" in lines
    assert "@" not in unit.split("[Unit]", 1)[1]  # every placeholder filled
    # and the check is real: a unit whose interpreter is missing fails it
    (rdk / "venv/bin/python").unlink()
    broken = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, check=False)
    assert broken.returncode != 0 and "venv/bin/python" in broken.stderr


def test_env_file_reads_the_same_in_python_and_in_the_shell(board_modules, tmp_path) -> None:
    env, _, _ = board_modules
    values = {
        "RDK_AGENT_CAMERA": "opencv:v4l2src device=/dev/video0 ! videoconvert ! appsink",
        "RDK_AGENT_PORT": "8090",
        "RDK_AGENT_TOKEN": "a-b_c.d~e",
    }
    path = tmp_path / "agent.env"
    path.write_text(env.render_env_file(values))

    assert env.read_env_file(path) == values
    shell = subprocess.run(
        ["bash", "-c", f'set -a; . "{path}"; printf "%s\\n" "$RDK_AGENT_CAMERA" "$RDK_AGENT_PORT" "$RDK_AGENT_TOKEN"'],
        capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    assert shell.stdout.splitlines() == list(values.values())


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("RDK_AGENT_CAMERA", 'say "hi"', "must not contain quotes"),
        ("RDK_AGENT_TOKEN", "$(reboot)", "must not contain quotes"),
        ("PATH", "/usr/bin", "is not an RDK_AGENT_<FIELD> name"),
    ],
)
def test_env_file_refuses_values_the_two_readers_would_disagree_on(board_modules, key, value, message) -> None:
    env, _, _ = board_modules
    with pytest.raises(env.BoardError, match=message):
        env.render_env_file({key: value})


def test_wheel_guard(board_modules, tmp_path) -> None:
    env, _, install = board_modules
    metadata = "Metadata-Version: 2.4\nName: rdk-weld-agent\nVersion: 0.1.0\nRequires-Dist: flask<4,>=3.0\n"
    good, bad = tmp_path / "good.whl", tmp_path / "bad.whl"
    for path, extra in ((good, ""), (bad, 'Requires-Dist: Lightning>=2.6; python_version >= "3.10"\n')):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("rdk_weld_agent-0.1.0.dist-info/METADATA", metadata + extra)
    assert install.wheel_requires(good) == ["flask<4,>=3.0"]
    with pytest.raises(env.BoardError, match=r"bad.whl requires 'Lightning>=2.6.*a training package"):
        install.wheel_requires(bad)


def test_requirements_guard(board_modules, tmp_path) -> None:
    env, _, install = board_modules
    install.check_requirements(REPO / "requirements/agent.txt")  # the real file passes
    bad = tmp_path / "agent.txt"
    bad.write_text("flask>=3\n# a comment\ntorch==2.4\n")
    with pytest.raises(env.BoardError, match=r"agent.txt:3: 'torch==2.4' is a training package"):
        install.check_requirements(bad)
