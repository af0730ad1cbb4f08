"""The page at tablet sizes: nothing spills sideways, the capture controls are on screen, screenshots for a look."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.page.conftest import SCREENSHOT_DIR, TABLET_LANDSCAPE, TABLET_PORTRAIT, open_logged_in


@pytest.mark.parametrize("name, viewport", [("landscape", TABLET_LANDSCAPE), ("portrait", TABLET_PORTRAIT)])
def test_tablet_layout_fits_and_keeps_capture_controls_visible(agent, browser, name, viewport):
    for label in ("good", "porosity", "gap"):
        requests.post(agent.api("captures"), json={"label": label}, headers=agent.auth, timeout=10).raise_for_status()
    context = browser.new_context(viewport=viewport)
    try:
        page = context.new_page()
        open_logged_in(page, agent)
        page.click("#inspect-btn")
        expect(page.locator("#inspect-result .engine-badge")).to_be_visible()
        expect(page.locator("#gallery .shot").first).to_be_visible()
        expect(page.locator("#live")).to_have_js_property("complete", True)

        # No sideways scrolling; every label button entirely inside the first screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        for box in (page.locator(".label-btn").nth(i).bounding_box() for i in range(5)):
            assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
            assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]
            assert box["height"] >= 44  # a finger-sized target
        preview = page.locator("#live").bounding_box()
        assert preview["width"] >= 0.5 * viewport["width"] or preview["height"] >= 0.35 * viewport["height"]
        assert page.locator("#live").evaluate("img => img.naturalWidth") > 0  # the MJPEG stream shows frames

        page.screenshot(path=str(SCREENSHOT_DIR / f"page-{name}.png"))
    finally:
        context.close()
