"""A station of another kind on the page: its own label schema, a replay camera that is lost and comes back
(shown over the preview, cleared by itself), a full disk (507), and the live inspection loop's results."""

from __future__ import annotations

import json
from collections.abc import Iterator

import cv2
import pytest
import requests
from playwright.sync_api import expect

from rdk_agent.camera.synthetic import SyntheticWeldGenerator
from rdk_agent.launcher import AgentProcess
from tests.page.conftest import SCREENSHOT_DIR, open_logged_in


@pytest.fixture
def casting_agent(tmp_path) -> Iterator[tuple[AgentProcess, object]]:
    """A casting station's agent: its own labels (one without a colour, one without a key), replaying a
    folder of generated frames, inspecting them continuously, with a free-space reserve no disk can
    meet. The test takes the folder away and back; every capture is refused with 507 for lack of space.
    """
    folder = tmp_path / "frames"
    folder.mkdir()
    generator = SyntheticWeldGenerator(seed=3, width=320, height=240)
    for i, label in enumerate(("good", "porosity", "spatter")):
        cv2.imwrite(str(folder / f"{i:02d}_{label}.png"), generator.generate(label).rgb)
    labels = tmp_path / "casting-labels.json"
    casting = [
        {"name": "ok", "is_defect": False, "key": "1", "colour": "#00aa55"},
        {"name": "crack", "key": "2"},
        {"name": "blowhole"},
    ]
    labels.write_text(json.dumps({"name": "casting", "labels": casting}))
    config = {"free_space_reserve_bytes": 2**60, "inspection": {"loop": True, "loop_interval_s": 1.0}}
    camera, args = f"replay:{folder}", ["--labels", str(labels)]
    process = AgentProcess(tmp_path / "data", tmp_path / "models", camera=camera, config=config, args=args)
    process.start()
    yield process, folder
    process.stop()


def test_camera_loss_and_a_full_disk_are_shown_and_the_page_recovers(casting_agent, page):
    agent, folder = casting_agent
    open_logged_in(page, agent)
    buttons = page.locator(".label-btn")
    expect(buttons).to_have_count(3)
    assert buttons.evaluate_all("bs => bs.map(b => b.dataset.label)") == ["ok", "crack", "blowhole"]
    expect(buttons.nth(2).locator("kbd")).to_be_hidden()  # no key bound
    assert buttons.nth(0).evaluate("b => getComputedStyle(b).borderTopColor") == "rgb(0, 170, 85)"
    palette = buttons.nth(1).evaluate("b => getComputedStyle(b).borderTopColor")
    assert palette.startswith("rgb(") and palette != buttons.nth(2).evaluate("b => getComputedStyle(b).borderTopColor")
    expect(page.locator("#progress .progress-row")).to_have_count(3)
    camera = page.locator("#st-camera")
    banner = page.locator("#camera-banner")
    expect(camera).to_have_attribute("data-state", "ok")
    expect(camera).to_have_text("camera replay")
    expect(banner).to_be_hidden()
    # The continuous inspection's latest result appears without pressing Inspect.
    expect(page.locator("#inspect-result .engine-badge")).to_have_text("rules")
    expect(page.locator("#inspect-result .engine-reason")).to_have_attribute("data-reason", "no_model")

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
    expect(page.locator(".toast-error").last).to_contain_text("Capture ok failed. Unavailable: no images in")
    page.screenshot(path=str(SCREENSHOT_DIR / "page-camera-lost.png"))
    assert requests.get(agent.api("healthz"), timeout=5).status_code == 200

    away.rename(folder)  # plugged back in
    expect(banner).to_be_hidden()
    expect(camera).to_have_attribute("data-state", "ok")

    # Disk full: the capture is refused with the agent's message, nothing is stored, the counts stay.
    page.keyboard.press("2")
    expect(page.locator(".toast-error").last).to_contain_text("Capture crack failed. Disk full:")
    expect(page.locator(".toast-error").last).to_contain_text("free_space_reserve_bytes")
    assert requests.get(agent.api("captures"), headers=agent.auth, timeout=5).json()["total"] == 0
    expect(page.locator('#progress .progress-row[data-label="crack"]')).to_have_attribute("data-count", "0")
    # The two refused captures are the only failed requests (each seen by the network log and the console).
    # (The agent answers 404 to inspect/latest until its loop has a first result; a slow start may see one.)
    latest_404 = "HTTP 404 " + agent.api("inspect/latest")
    failed = sorted(e for e in page.log.errors if e.startswith("HTTP") and e != latest_404)
    assert failed == ["HTTP 503 " + agent.api("captures"), "HTTP 507 " + agent.api("captures")]
    assert all("Failed to load resource" in e for e in page.log.errors if not e.startswith("HTTP"))
