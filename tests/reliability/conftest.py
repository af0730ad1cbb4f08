"""Fixtures of the reliability suite: a module-wide agent with small limits, and the app's URL map."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rdk_agent.app import create_app
from rdk_agent.config import AgentConfig
from rdk_agent.launcher import AgentProcess
from tests.reliability.support import Tally, write_report

MAX_UPLOAD = 256 * 1024
MAX_PIXELS = 2_000_000
TOKEN = "reliability-token-5f2c9a"


@pytest.fixture(scope="module")
def small_agent(tmp_path_factory) -> Iterator[AgentProcess]:
    """One real agent for a whole module, with a 256 KiB body limit and a 2 Mpx image limit."""
    root = tmp_path_factory.mktemp("small-agent")
    agent = AgentProcess(root / "data", root / "models", token=TOKEN,
                         config={"max_upload_bytes": MAX_UPLOAD, "max_image_pixels": MAX_PIXELS})  # fmt: skip
    agent.start()
    yield agent
    agent.stop()


@pytest.fixture(scope="session")
def url_rules(tmp_path_factory) -> list[tuple[str, frozenset[str], frozenset[str]]]:
    """Every route of the real app as ``(rule, methods, arguments)``; HEAD and OPTIONS left out."""
    root = tmp_path_factory.mktemp("url-map")
    app = create_app(AgentConfig(data_dir=root / "data", models_dir=root / "models"), token="x")
    try:
        return [(r.rule, frozenset(r.methods - {"HEAD", "OPTIONS"}), frozenset(r.arguments))
                for r in app.url_map.iter_rules()]  # fmt: skip
    finally:
        app.extensions["rdk"].close()


def pytest_terminal_summary(terminalreporter) -> None:
    """The bad inputs tried per endpoint: printed after the run and written to bench/out/."""
    if not Tally.counts:
        return
    path = write_report("reliability_bad_inputs", {"per_endpoint": Tally.counts, "total": sum(Tally.counts.values())})
    terminalreporter.section("reliability: bad inputs tried per endpoint")
    for endpoint, n in sorted(Tally.counts.items()):
        terminalreporter.write_line(f"{n:6d}  {endpoint}")
    terminalreporter.write_line(f"{sum(Tally.counts.values()):6d}  in all ({path})")
