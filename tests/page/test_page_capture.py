"""The operator's collection loop in a real browser against a real agent: capture by key, relabel, delete, review."""

from __future__ import annotations

import gzip
import io
import tarfile

import cv2
import numpy as np
import requests
from playwright.sync_api import expect

from tests.page.conftest import open_logged_in


def count(page, label: str) -> int:
    """The count the page shows for ``label``."""
    return int(page.locator(f'#progress .progress-row[data-label="{label}"]').get_attribute("data-count"))


def api_count(agent, label: str) -> int:
    """The count the agent reports for ``label``."""
    stats = requests.get(agent.api("dataset/stats"), headers=agent.auth, timeout=5).json()
    return next(entry["count"] for entry in stats["labels"] if entry["name"] == label)


def test_label_keys_capture_and_the_counts_rise(agent, page):
    open_logged_in(page, agent)
    buttons = page.locator(".label-btn")
    expect(buttons).to_have_count(5)
    expect(buttons.nth(1)).to_contain_text("porosity")
    expect(buttons.nth(1).locator("kbd")).to_have_text("2")
    before = {label: count(page, label) for label in ("porosity", "spatter")}

    # Rapid presses, no waiting in between: each one is captured, none blocks the next.
    for key in "22232":
        page.keyboard.press(key)
    expect(page.locator(".toast-ok", has_text="Captured porosity").first).to_be_visible()

    row = page.locator('#progress .progress-row[data-label="porosity"]')
    expect(row).to_have_attribute("data-count", str(before["porosity"] + 4))
    expect(page.locator('#progress .progress-row[data-label="spatter"]')).to_have_attribute(
        "data-count", str(before["spatter"] + 1)
    )
    expect(row.locator(".progress-count")).to_have_text(f"{before['porosity'] + 4} / 100")
    assert api_count(agent, "porosity") == before["porosity"] + 4

    # The gallery shows the five new captures first (concurrent, so in any order), each with its label.
    newest_five = "() => [...document.querySelectorAll('#gallery .shot')].slice(0, 5).map((c) => c.dataset.label)"
    page.wait_for_function(f"{newest_five}.sort().join() === 'porosity,porosity,porosity,porosity,spatter'")
    first = page.locator("#gallery .shot").first
    first.scroll_into_view_if_needed()
    first.locator("img").evaluate("img => img.decode()")  # the thumbnail loads and is a real image
    assert first.locator("img").evaluate("img => img.naturalWidth") > 0
    assert page.log.errors == []


def test_relabel_and_delete_in_the_gallery_reach_the_api(agent, page):
    open_logged_in(page, agent)
    page.keyboard.press("1")
    page.keyboard.press("1")
    cards = page.locator("#gallery .shot")
    expect(cards.nth(1)).to_have_attribute("data-label", "good")
    first_id = cards.nth(0).get_attribute("data-id")
    second_id = cards.nth(1).get_attribute("data-id")
    gap_before = count(page, "gap")

    cards.nth(0).locator("select.relabel").select_option("gap")
    expect(cards.nth(0)).to_have_attribute("data-label", "gap")
    record = requests.get(agent.api(f"captures/{first_id}"), headers=agent.auth, timeout=5).json()
    assert record["label"] == "gap"
    expect(page.locator('#progress .progress-row[data-label="gap"]')).to_have_attribute(
        "data-count", str(gap_before + 1)
    )
    # After relabelling, the label keys capture again (the select gave the keyboard back).
    page.keyboard.press("4")
    expect(page.locator('#progress .progress-row[data-label="gap"]')).to_have_attribute(
        "data-count", str(gap_before + 2)
    )
    cards = page.locator("#gallery .shot")  # the new capture is first now
    expect(cards.nth(2)).to_have_attribute("data-id", second_id)

    delete = page.locator(f'#gallery .shot[data-id="{second_id}"] button.delete')
    delete.click()
    expect(delete).to_have_text("Confirm delete")
    assert requests.get(agent.api(f"captures/{second_id}"), headers=agent.auth, timeout=5).status_code == 200
    delete.click()
    expect(page.locator(f'#gallery .shot[data-id="{second_id}"]')).to_have_count(0)
    assert requests.get(agent.api(f"captures/{second_id}"), headers=agent.auth, timeout=5).status_code == 404
    assert page.log.errors == []


def test_review_queue_filter_lets_the_operator_label_unlabelled_captures(agent, page):
    # An unlabelled capture, as active learning leaves it: captured, then returned to the queue.
    created = requests.post(agent.api("captures"), json={"label": "good"}, headers=agent.auth, timeout=10).json()
    url = agent.api(f"captures/{created['id']}")
    returned = requests.patch(url, json={"label": None}, headers=agent.auth, timeout=5)
    assert returned.status_code == 200 and returned.json()["label"] is None

    open_logged_in(page, agent)
    page.locator("#gallery-filter").select_option("__review__")
    expect(page.locator("#gallery")).to_have_attribute("data-filter", "__review__")
    card = page.locator(f'#gallery .shot[data-id="{created["id"]}"]')
    expect(card).to_have_attribute("data-label", "")
    labels_shown = page.locator("#gallery .shot").evaluate_all("cards => cards.map(c => c.dataset.label)")
    assert set(labels_shown) == {""}

    card.locator("select.relabel").select_option("undercut")
    expect(card).to_have_count(0)  # labelled, so it leaves the review queue
    record = requests.get(agent.api(f"captures/{created['id']}"), headers=agent.auth, timeout=5).json()
    assert record["label"] == "undercut"
    if len(labels_shown) == 1:
        expect(page.locator("#gallery-empty")).to_be_visible()
    assert page.log.errors == []


def test_download_button_streams_the_dataset_with_the_session_cookie(agent, page):
    open_logged_in(page, agent)
    page.keyboard.press("3")
    expect(page.locator("#gallery .shot").first).to_have_attribute("data-label", "spatter")
    link = page.locator("#download")
    expect(link).to_be_visible()
    with page.expect_download() as info:
        link.click()
    archive = info.value.path().read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive))) as tar:
        names = tar.getnames()
    assert "manifest.json" in names
    stats = requests.get(agent.api("dataset/stats"), headers=agent.auth, timeout=5).json()
    assert sum(1 for n in names if n.endswith("rgb.png")) == stats["labelled"]


def test_gallery_filter_and_load_more_page_through_a_label(agent, page):
    # 30 small uploads of one label, fast to store: more than one gallery page (24).
    rng = np.random.default_rng(5)
    for _ in range(30):
        _, png = cv2.imencode(".png", rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
        files = {"image": ("frame.png", png.tobytes(), "image/png")}
        form = {"label": "undercut"}
        response = requests.post(agent.api("captures"), files=files, data=form, headers=agent.auth, timeout=10)
        assert response.status_code == 201, response.text
    total = api_count(agent, "undercut")

    open_logged_in(page, agent)
    page.locator("#gallery-filter").select_option("undercut")
    expect(page.locator("#gallery")).to_have_attribute("data-filter", "undercut")
    cards = page.locator("#gallery .shot")
    expect(cards).to_have_count(24)
    more = page.locator("#load-more")
    expect(more).to_be_visible()
    more.click()
    expect(cards).to_have_count(min(total, 48))
    labels = set(cards.evaluate_all("cards => cards.map(c => c.dataset.label)"))
    assert labels == {"undercut"}
    ids = cards.evaluate_all("cards => cards.map(c => c.dataset.id)")
    assert len(set(ids)) == len(ids)  # pages do not overlap
    if total <= 48:
        expect(more).to_be_hidden()
    assert page.log.errors == []
