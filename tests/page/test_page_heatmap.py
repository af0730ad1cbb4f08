"""The inspection panel overlays the model's heat map on the preview (headless Chromium, a real agent)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import expect

from rdk_agent.launcher import AgentProcess
from shared_schema import default_weld_schema
from tests.helpers.cam_models import cam_card, cam_model_bytes
from tests.page.conftest import SCREENSHOT_DIR, open_logged_in


@pytest.fixture(scope="module")
def cam_agent(tmp_path_factory) -> Iterator[AgentProcess]:
    """An agent of its own: the shared one's model state belongs to test_page_inspect."""
    root = tmp_path_factory.mktemp("heatmap-agent")
    config = {"inspection": {"poll_interval_s": 0.1, "intra_op_threads": 1}}
    process = AgentProcess(root / "data", root / "models", token="heatmap-token", config=config)
    process.start()
    yield process
    process.stop()


def deploy(agent: AgentProcess, data: bytes) -> None:
    """Write the model as rsync does and wait until the agent serves it."""
    tmp = agent.models_dir / ".model.onnx.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, agent.models_dir / "model.onnx")
    sha = hashlib.sha256(data).hexdigest()
    deadline = time.monotonic() + 15
    while (status := requests.get(agent.api("model"), headers=agent.auth, timeout=5).json())["state"] != "active" or (
        status.get("active") or {}
    ).get("sha256") != sha:
        assert time.monotonic() < deadline, f"model never became active: {status}"
        time.sleep(0.1)


def test_the_heat_map_is_overlaid_on_the_preview(cam_agent, page):
    open_logged_in(page, cam_agent)
    overlay = page.locator("#heatmap-overlay")
    result = page.locator("#inspect-result")

    page.click("#inspect-btn")  # no model: the rules decide, there is no map
    expect(result.locator(".engine-badge")).to_have_text("rules")
    expect(overlay).to_be_hidden()
    expect(result.locator(".heatmap-note")).to_have_count(0)

    deploy(cam_agent, cam_model_bytes(cam_card(default_weld_schema(), resize="letterbox", fine=True)))
    page.click("#inspect-btn")
    expect(result.locator(".engine-badge")).to_have_text("onnx")
    expect(overlay).to_be_visible()
    expect(overlay).to_have_attribute("data-label", "porosity")
    assert overlay.get_attribute("src").startswith("data:image/png;base64,")
    # the PNG decoded (a 64 x 48 map of a 640 x 480 frame) and covers the preview's box
    assert overlay.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]") == [True, 64, 48]
    box, live = overlay.bounding_box(), page.locator("#live").bounding_box()
    assert box is not None and live is not None
    assert abs(box["width"] - live["width"]) < 1 and abs(box["height"] - live["height"]) < 1
    note = result.locator(".heatmap-note")
    expect(note).to_contain_text("where the model saw porosity")
    page.screenshot(path=str(SCREENSHOT_DIR / "page-heatmap.png"))

    note.locator("button").click()
    expect(overlay).to_be_hidden()
    expect(note.locator("button")).to_have_text("Show map")
    note.locator("button").click()
    expect(overlay).to_be_visible()
    assert page.log.errors == []
