"""The Models panel against its own real agent: versions with state, golden scores and verdict; Promote, Roll back."""

from __future__ import annotations

import hashlib

import requests
from playwright.sync_api import expect

from tests.helpers import ranked_models as rm
from tests.page.conftest import open_logged_in

SETTINGS = {"poll_interval_s": 0.1, "intra_op_threads": 1, "golden_check_s": 0.2, "promotion": "manual"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def serving(agent) -> str:
    return requests.get(agent.api("model"), headers=agent.auth, timeout=5).json()["active"]["sha256"]


def test_models_panel_shows_versions_and_promotes_and_rolls_back(agent_process, page):
    agent = agent_process(token="page-models-token", config={"inspection": SETTINGS})
    rm.upload_golden(agent, per_class=2)
    open_logged_in(page, agent)
    expect(page.locator("#models-empty")).to_be_visible()

    first = rm.deploy(agent.models_dir, "mediocre")
    row = page.locator(f'.model-row[data-sha256="{sha(first)}"]')
    expect(row).to_have_attribute("data-state", "champion")
    expect(row.locator(".model-golden")).to_have_text("golden: accuracy 66.7%, macro-F1 0.556 on 6")
    expect(row.locator(".model-verdict")).to_contain_text("promoted: first model on this board")

    second = rm.deploy(agent.models_dir, "perfect")
    challenger = page.locator(f'.model-row[data-sha256="{sha(second)}"]')
    expect(challenger).to_have_attribute("data-state", "challenger")
    expect(challenger.locator(".model-verdict")).to_have_attribute("data-decision", "waiting")
    expect(challenger.locator(".model-verdict")).to_contain_text("promotion is manual")
    expect(challenger.locator(".model-golden")).to_have_text("golden: accuracy 100.0%, macro-F1 1.000 on 6")
    expect(page.locator(".model-row")).to_have_count(2)
    expect(page.locator("#models-empty")).to_be_hidden()
    expect(row.locator("button")).to_have_count(0)  # the champion has no action

    challenger.locator(".model-promote").click()
    expect(challenger).to_have_attribute("data-state", "champion")
    expect(row).to_have_attribute("data-state", "retired")
    assert serving(agent) == sha(second)

    row.locator(".model-rollback").click()
    expect(row).to_have_attribute("data-state", "champion")
    expect(challenger).to_have_attribute("data-state", "retired")
    assert serving(agent) == sha(first)
    expect(page.locator("#st-model")).to_contain_text(sha(first)[:8])
    assert not page.log.errors, page.log.errors
