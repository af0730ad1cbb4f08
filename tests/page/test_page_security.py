"""The page's security headers, no inline script anywhere, and the two ways to log in."""

from __future__ import annotations

from html.parser import HTMLParser

import requests
from playwright.sync_api import expect

from rdk_agent.web import CONTENT_SECURITY_POLICY


class _Inventory(HTMLParser):
    """Scripts, stylesheets and any inline code in an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict] = []
        self.inline_code: list[str] = []
        self.stylesheets: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") or name == "style" or (value or "").strip().lower().startswith("javascript:"):
                self.inline_code.append(f"<{tag} {name}={value!r}>")
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = True
        if tag == "style":
            self.inline_code.append("<style> element")
        if tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(attributes["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_code.append(f"inline script: {data.strip()[:60]}")


def test_page_and_assets_carry_security_headers_and_no_inline_code(agent):
    response = requests.get(f"{agent.url}/", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert "page-test-token" not in response.text

    inventory = _Inventory()
    inventory.feed(response.text)
    assert inventory.inline_code == []
    assert inventory.scripts and all(s.get("src", "").startswith("/ui/") for s in inventory.scripts)
    assert all(href.startswith("/ui/") for href in inventory.stylesheets)
    assert "http://" not in response.text and "https://" not in response.text  # no CDN

    for src in [s["src"] for s in inventory.scripts] + inventory.stylesheets:
        asset = requests.get(f"{agent.url}{src}", timeout=5)
        assert asset.status_code == 200, src
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
        expected = "javascript" if src.split("?")[0].endswith(".js") else "text/css"
        assert expected in asset.headers["Content-Type"], (src, asset.headers["Content-Type"])


def test_login_form_refuses_a_wrong_token_and_accepts_the_right_one(agent, page):
    page.goto(f"{agent.url}/", wait_until="domcontentloaded")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()

    page.fill("#token-input", "not-the-token")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("wrong token")
    expect(page.locator("#app")).to_be_hidden()

    page.fill("#token-input", agent.token)
    page.click("#login-form button[type=submit]")
    expect(page.locator(".label-btn")).to_have_count(5)
    expect(page.locator("#login")).to_be_hidden()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["rdk_session"]["httpOnly"] and cookies["rdk_session"]["sameSite"] == "Strict"
    assert agent.token not in cookies["rdk_session"]["value"]


def test_token_link_logs_in_and_drops_the_token_from_the_address(agent, page):
    page.goto(f"{agent.url}/?token={agent.token}", wait_until="domcontentloaded")
    expect(page.locator(".label-btn")).to_have_count(5)
    assert "token" not in page.url
    assert page.log.errors == []

    # The policy is in force: an injected inline script does not run, and Chromium reports the violation.
    ran = page.evaluate(
        """() => { const s = document.createElement("script"); s.textContent = "window.__inline = 1";
                   document.body.append(s); return window.__inline === 1; }"""
    )
    assert ran is False
    for _ in range(100):  # console messages arrive asynchronously
        if any("Content Security Policy" in e for e in page.log.errors):
            break
        page.wait_for_timeout(50)
    assert any("Content Security Policy" in e for e in page.log.errors), page.log.errors


def test_a_lost_session_brings_back_the_login_form(agent, page):
    page.goto(f"{agent.url}/?token={agent.token}", wait_until="domcontentloaded")
    expect(page.locator(".label-btn")).to_have_count(5)
    page.context.clear_cookies()
    page.keyboard.press("1")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator(".toast-error")).to_contain_text("Not logged in")
