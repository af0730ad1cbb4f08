"""Shared fixtures: ``agent_process`` starts real agent processes on free ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from rdk_agent.launcher import AgentProcess


@pytest.fixture
def agent_process(tmp_path_factory) -> Iterator[Callable[..., AgentProcess]]:
    """Factory: ``agent_process(camera="synthetic", token=..., config={...}, args=[...], env={...})``.

    Each call starts a real ``python -m rdk_agent`` with its own tmp data and models dirs (pass
    ``data_dir=`` / ``models_dir=`` to choose them) and waits for /healthz. All are stopped at the end.
    """
    started: list[AgentProcess] = []

    def start(**kwargs) -> AgentProcess:
        root = tmp_path_factory.mktemp("agent")
        kwargs.setdefault("data_dir", root / "data")
        kwargs.setdefault("models_dir", root / "models")
        agent = AgentProcess(**kwargs)
        started.append(agent)
        return agent.start()

    yield start
    for agent in started:
        agent.stop()
