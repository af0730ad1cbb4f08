"""Camera lost and back: the page says so over the preview, shows capture errors, and recovers by itself."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import pytest
import requests
from playwright.sync_api import expect

from rdk_agent.camera.synthetic import SyntheticWeldGenerator
from tests.helpers.agent_process import AgentProcess
from tests.page.conftest import SCREENSHOT_DIR, open_logged_in


@pytest.fixture
def replay_agent(tmp_path) -> Iterator[tuple[AgentProcess, object]]:
    """An agent replaying a folder of generated weld frames; the test takes the folder away and back."""
    folder = tmp_path / "frames"
    folder.mkdir()
    generator = SyntheticWeldGenerator(seed=3, width=320, height=240)
    for i, label in enumerate(("good", "porosity", "spatter")):
        cv2.imwrite(str(folder / f"{i:02d}_{label}.png"), generator.generate(label).rgb)
    process = AgentProcess(tmp_path / "data", tmp_path / "models", token="page-camera-token", camera=f"replay:{folder}")
    process.start()
    yield process, folder
    process.stop()


def test_camera_lost_is_shown_and_clears_when_frames_return(replay_agent, page):
    agent, folder = replay_agent
    open_logged_in(page, agent)
    camera = page.locator("#st-camera")
    banner = page.locator("#camera-banner")
    expect(camera).to_have_attribute("data-state", "ok")
    expect(camera).to_have_text("camera replay")
    expect(banner).to_be_hidden()

    away = folder.with_name("frames-unplugged")
    folder.rename(away)  # the camera "unplugged": every read fails
    expect(camera).to_have_attribute("data-state", "bad")
    expect(camera).to_have_text("camera lost")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(str(folder))
    status = requests.get(agent.api("status"), headers=agent.auth, timeout=5).json()
    assert status["camera"]["connected"] is False

    # A capture while the camera is away fails visibly; the page and the API keep working.
    page.keyboard.press("1")
    expect(page.locator(".toast-error")).to_contain_text("Capture good failed")
    page.screenshot(path=str(SCREENSHOT_DIR / "page-camera-lost.png"))
    assert requests.get(agent.api("captures"), headers=agent.auth, timeout=5).json()["total"] == 0

    away.rename(folder)  # plugged back in
    expect(banner).to_be_hidden()
    expect(camera).to_have_attribute("data-state", "ok")
    page.keyboard.press("2")
    expect(page.locator('#progress .progress-row[data-label="porosity"]')).to_have_attribute("data-count", "1")
    # The refused capture is the only failed request, seen once by the network log and once by the console.
    assert sorted(page.log.errors) == [
        "HTTP 503 " + agent.api("captures"),
        "console: Failed to load resource: the server responded with a status of 503 (SERVICE UNAVAILABLE)",
    ]
