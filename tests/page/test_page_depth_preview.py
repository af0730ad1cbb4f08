"""The preview's depth toggle: shown for a camera with depth, it switches the live stream to the depth map."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.page.conftest import open_logged_in

# mean colourfulness (max - min channel) of the preview's current frame (-1 while none is shown): the depth map
# is a colour map, the synthetic camera's metal is nearly grey
COLOURFULNESS = """() => {
  const img = document.getElementById("live");
  if (!img.complete || !img.naturalWidth) return -1;
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0;
  for (let i = 0; i < data.length; i += 4) {
    sum += Math.max(data[i], data[i + 1], data[i + 2]) - Math.min(data[i], data[i + 1], data[i + 2]);
  }
  return sum / (data.length / 4);
}"""
LOADED = "() => { const i = document.getElementById('live'); return i.complete && i.naturalWidth > 0; }"


def test_depth_toggle_switches_the_preview_to_the_depth_map_and_back(agent, page):
    open_logged_in(page, agent)
    expect(page.locator("#depth-toggle")).to_be_visible()  # the synthetic camera gives depth
    page.wait_for_function(LOADED)
    grey = page.evaluate(COLOURFULNESS)

    page.check("#depth-view")
    expect(page.locator("#live")).to_have_attribute("src", re.compile(r"stream\.mjpg\?view=depth&"))
    page.wait_for_function(LOADED)
    page.wait_for_function(f"() => ({COLOURFULNESS})() > {grey + 40}")

    page.uncheck("#depth-view")
    expect(page.locator("#live")).to_have_attribute("src", re.compile(r"stream\.mjpg\?view=rgb&"))
    page.wait_for_function(f"() => {{ const c = ({COLOURFULNESS})(); return c >= 0 && c < {grey + 15}; }}")
    assert not page.log.errors
