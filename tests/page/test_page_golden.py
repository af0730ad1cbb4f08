"""The golden set on the page: each card's star shows and toggles the flag, the group star sets a whole group,
and the "Golden set" filter lists only golden captures."""

from __future__ import annotations

import requests
from playwright.sync_api import expect

from shared_schema.split import is_test_group
from tests.page.conftest import open_logged_in

NAMES = [f"golden-page-{i}" for i in range(200)]
TEST_SIDE = next(g for g in NAMES if is_test_group(g))
TRAIN_SIDE = [g for g in NAMES if not is_test_group(g)][:2]


def capture(agent, group: str) -> dict:
    r = requests.post(agent.api("captures"), json={"label": "good", "group": group}, headers=agent.auth, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def golden(agent, sample_id: str) -> bool:
    return requests.get(agent.api(f"captures/{sample_id}"), headers=agent.auth, timeout=5).json()["golden"]


def test_the_star_toggles_golden_and_the_filter_shows_the_golden_set(agent, page):
    by_split = capture(agent, TEST_SIDE)
    plain = capture(agent, TRAIN_SIDE[0])
    grouped = [capture(agent, TRAIN_SIDE[1]) for _ in range(2)]
    open_logged_in(page, agent)

    def card(record):
        return page.locator(f'#gallery .shot[data-id="{record["id"]}"]')

    expect(card(by_split)).to_have_attribute("data-golden", "1")
    expect(card(by_split).locator(".golden-toggle")).to_have_text("★")
    star = card(plain).locator(".golden-toggle")
    expect(star).to_have_attribute("aria-pressed", "false")
    star.click()
    expect(star).to_have_attribute("aria-pressed", "true")
    expect(card(plain)).to_have_attribute("data-golden", "1")
    assert golden(agent, plain["id"])
    history = requests.get(agent.api(f"captures/{plain['id']}/history"), headers=agent.auth, timeout=5).json()
    assert [(h["field"], h["new"], h["actor"]) for h in history["history"]] == [("golden", "true", "page session")]

    card(grouped[0]).locator(".golden-group").click()
    expect(page.locator(".toast-ok", has_text=f"Group {TRAIN_SIDE[1]}: 2 of 2")).to_be_visible()
    for record in grouped:
        expect(card(record)).to_have_attribute("data-golden", "1")
        assert golden(agent, record["id"])

    page.locator("#gallery-filter").select_option(label="Golden set")
    expect(page.locator("#gallery")).to_have_attribute("data-filter", "__golden__")
    shown = page.locator("#gallery .shot")
    expect(shown.first).to_be_visible()
    assert all(value == "1" for value in shown.evaluate_all("cards => cards.map(c => c.dataset.golden)"))
    expect(card(plain)).to_be_visible()
    card(plain).locator(".golden-toggle").click()  # taken out: the card leaves the golden list
    expect(card(plain)).to_have_count(0)
    assert not golden(agent, plain["id"])
    assert page.log.errors == []
