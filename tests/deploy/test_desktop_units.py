"""The desktop's retraining units (deploy/desktop): systemd-analyze accepts them, and the make target they run
builds the retrain command from the settings the environment file gives."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.deploy.loopback import REPO

UNITS = [REPO / "deploy/desktop/weld-retrain.service", REPO / "deploy/desktop/weld-retrain.timer"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (package systemd)")
def test_units_pass_systemd_analyze_verify(tmp_path) -> None:
    for unit in UNITS:
        shutil.copy(unit, tmp_path / unit.name)
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / u.name) for u in UNITS)], capture_output=True, text=True
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    service = UNITS[0].read_text().splitlines()
    assert "ExecStart=/usr/bin/make retrain" in service and "Type=oneshot" in service
    assert "OnCalendar=Sun *-*-* 02:00:00" in UNITS[1].read_text().splitlines()


def test_make_retrain_takes_its_settings_from_the_environment() -> None:
    env = {"PATH": os.environ["PATH"], "RDK_HOST": "sunrise@192.168.1.10", "MIN_NEW_LABELS": "20"}
    dry = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "retrain"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert dry.returncode == 0, dry.stderr
    command = " ".join(dry.stdout.split())
    assert '-m desktop_trainer.retrain \\ --agent "http://192.168.1.10:8080" --experiment "baseline"' in command
    assert '--min-new-labels "20"' in command and 'RDK_HOST="sunrise@192.168.1.10"' in command
    unset = subprocess.run(
        ["make", "-o", ".venv/.installed", "retrain"],
        cwd=REPO,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
    )
    assert unset.returncode != 0 and "RDK_HOST is not set" in unset.stderr
