"""The current group on the page: set it once, the following captures carry it, the gallery shows it."""

from __future__ import annotations

import requests
from playwright.sync_api import expect

from tests.page.conftest import open_logged_in


def newest(agent) -> dict:
    """The agent's newest capture."""
    return requests.get(agent.api("captures?limit=1"), headers=agent.auth, timeout=5).json()["items"][0]


def total(agent) -> int:
    """How many captures the agent holds."""
    return requests.get(agent.api("captures?limit=1"), headers=agent.auth, timeout=5).json()["total"]


def test_the_group_set_on_the_page_sticks_to_the_next_captures(agent, page):
    try:
        open_logged_in(page, agent)
        group_input = page.locator("#group-input")
        expect(group_input).to_have_value("")
        before = total(agent)

        group_input.fill("A-12 weld 3")  # digits typed here are text, not label keys
        group_input.press("Enter")
        expect(page.locator(".toast-ok", has_text="Group A-12 weld 3")).to_be_visible()
        assert total(agent) == before
        current = requests.get(agent.api("current-group"), headers=agent.auth, timeout=5).json()
        assert current == {"group": "A-12 weld 3"}

        page.keyboard.press("2")  # porosity
        first = page.locator("#gallery .shot").first
        expect(first).to_have_attribute("data-group", "A-12 weld 3")
        expect(first.locator(".shot-group")).to_have_text("A-12 weld 3")
        assert newest(agent)["group"] == "A-12 weld 3" and newest(agent)["label"] == "porosity"

        # Typed and then a label button clicked at once: the capture waits for the new group.
        group_input.fill("A-13")
        page.locator('.label-btn[data-label="gap"]').click()
        expect(first).to_have_attribute("data-group", "A-13")
        assert newest(agent)["group"] == "A-13" and newest(agent)["label"] == "gap"

        # A reload shows the agent's current group; clearing it leaves the next capture without one.
        page.reload(wait_until="domcontentloaded")
        expect(group_input).to_have_value("A-13")
        group_input.fill("")
        group_input.press("Enter")
        expect(page.locator(".toast-ok", has_text="No group")).to_be_visible()
        page.keyboard.press("1")
        expect(page.locator("#gallery .shot").first).to_have_attribute("data-group", "")
        assert newest(agent)["group"] is None
        assert page.log.errors == []
    finally:
        requests.put(agent.api("current-group"), json={"group": None}, headers=agent.auth, timeout=5)
