"""The inspection panel against a real agent: rules without a model, ONNX once one is deployed, fallback reasons."""

from __future__ import annotations

import time

import requests
from playwright.sync_api import expect

from rdk_agent.launcher import AgentProcess
from tests.helpers.onnx_models import write_low_confidence, write_valid
from tests.page.conftest import open_logged_in


def model_status(agent: AgentProcess) -> dict:
    return requests.get(agent.api("model"), headers=agent.auth, timeout=5).json()


def wait_for_state(agent: AgentProcess, state: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while (status := model_status(agent))["state"] != state or status["loading"]:
        assert time.monotonic() < deadline, f"model never reached {state}: {status}"
        time.sleep(0.1)
    return status


def test_inspect_shows_engine_reason_probabilities_and_rule_measures(agent, page):
    """Deploys models into the shared agent (no other page test depends on its model state)."""
    wait_for_state(agent, "no_model")
    counters = model_status(agent)["counters"]["engine"]
    open_logged_in(page, agent)
    expect(page.locator("#st-model")).to_have_text("rules only · no model deployed")

    # No model: the rules decide, and the panel says why.
    page.click("#inspect-btn")
    result = page.locator("#inspect-result")
    expect(result.locator(".engine-badge")).to_have_text("rules")
    expect(result.locator(".engine-reason")).to_have_attribute("data-reason", "no_model")
    expect(result.locator(".engine-reason")).to_have_text("no model deployed")
    expect(result.locator(".measures dt", has_text="width mm")).to_have_count(1)
    expect(result.locator(".latency")).to_contain_text("ms")
    assert model_status(agent)["counters"]["engine"]["rules"] == counters["rules"] + 1

    # A confident model whose winner is "spatter": ONNX decides, no fallback reason, all five probabilities.
    write_valid(agent.models_dir / "model.onnx", dominant="spatter", margin=8.0)
    sha = wait_for_state(agent, "active")["active"]["sha256"]
    expect(page.locator("#st-model")).to_have_text(f"tiny-test-classifier {sha[:8]}")
    page.keyboard.press("i")
    expect(result.locator(".engine-badge")).to_have_text("onnx")
    expect(result.locator(".engine-reason")).to_have_count(0)
    expect(result.locator(".verdict-label")).to_have_text("spatter")
    expect(result.locator(".prob")).to_have_count(5)
    expect(result.locator(".prob").first.locator(".prob-name")).to_have_text("spatter")
    assert float(result.locator(".verdict-pct").inner_text().rstrip("%")) > 90
    expect(result.locator(".verdict-conf small")).to_have_text("confidence")
    assert model_status(agent)["counters"]["engine"]["onnx"] == counters["onnx"] + 1

    # A model that is never sure: the rules decide with reason low_confidence, the model's view still shown.
    write_low_confidence(agent.models_dir / "model.onnx")
    wait_for_state(agent, "active")
    expect(page.locator("#st-model")).not_to_have_text(f"tiny-test-classifier {sha[:8]}")
    page.click("#inspect-btn")
    expect(result.locator(".engine-badge")).to_have_text("rules")
    expect(result.locator(".engine-reason")).to_have_attribute("data-reason", "low_confidence")
    expect(result.locator(".prob")).to_have_count(5)
    assert page.log.errors == []
