"""Fixtures for the deploy tests: a loopback "board" reached over a real sshd (see loopback.py)."""

from __future__ import annotations

import subprocess

import pytest

from tests.deploy.loopback import LoopbackBoard, start_board


@pytest.fixture(scope="session")
def loopback_board(tmp_path_factory) -> LoopbackBoard:
    """One loopback board per session (the agent deployed onto it is stopped at the end)."""
    with start_board(tmp_path_factory.mktemp("board")) as board:
        yield board


@pytest.fixture(scope="session")
def deployed(loopback_board: LoopbackBoard) -> subprocess.CompletedProcess:
    """The first deployment onto the empty loopback board (creates the venv: the slow step of this suite)."""
    result = loopback_board.run("deploy_rdk.sh", RDK_PIP_ARGS="--no-compile")
    assert result.returncode == 0, f"first deploy failed:\n{result.stdout}\n{result.stderr}"
    return result
