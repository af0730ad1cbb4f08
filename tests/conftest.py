"""Shared fixtures and the test layers.

In process (the fast layer, ``make test-fast``): ``app`` and ``client`` (the Flask tutorial's
fixtures) and the ``agent_app`` factory build the agent with ``create_app`` and drive it through
Flask's test client (see ``tests/agent_app.py``). Real processes: ``agent_process`` starts
``python -m rdk_agent`` on a free port. Markers name the layers: every test that uses
``agent_process`` is marked ``server``, and each folder whose tests need a process, a browser, sshd
or torch is marked by its name (``page``, ``deploy``, ``e2e``, ``reliability``, ``trainer``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from rdk_agent.launcher import AgentProcess
from tests.agent_app import AgentApp

TESTS_DIR = Path(__file__).resolve().parent
FOLDER_MARKERS = {"page", "deploy", "e2e", "reliability", "trainer"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its layer: its folder's marker, and ``server`` when it starts an agent process."""
    for item in items:
        folder = item.path.relative_to(TESTS_DIR).parts[0]
        if folder in FOLDER_MARKERS:
            item.add_marker(folder)
        if "agent_process" in getattr(item, "fixturenames", ()):
            item.add_marker("server")


@pytest.fixture
def agent_app(tmp_path_factory) -> Iterator[Callable[..., AgentApp]]:
    """Factory: ``agent_app(camera="synthetic", token=..., **AgentConfig fields)`` -> a started AgentApp.

    Each call builds an in-process agent with its own tmp data and models dirs. All are closed at the end.
    """
    started: list[AgentApp] = []

    def start(**settings) -> AgentApp:
        root = tmp_path_factory.mktemp("app")
        agent = AgentApp(root / "data", root / "models", **settings)
        started.append(agent)
        return agent.start()

    yield start
    for agent in started:
        agent.stop()


@pytest.fixture
def app(agent_app: Callable[..., AgentApp]) -> Flask:
    """The agent's app on the synthetic camera with tmp dirs and the token ``tests.agent_app.TOKEN``."""
    return agent_app().app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app``."""
    return app.test_client()


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
