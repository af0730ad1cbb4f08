"""Fixtures for the operator page tests: a real agent process and a headless Chromium or Chrome.

The browser is ``$CHROME_BIN`` when set (GitHub CI: Chrome from browser-actions/setup-chrome), else
Debian's ``/usr/bin/chromium``. Without one the tests skip, except under CI (``$CI`` set), where
they fail: a CI run must not pass without the page tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect, sync_playwright

from rdk_agent.launcher import AgentProcess

CHROMIUM = Path(os.environ.get("CHROME_BIN") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TABLET_LANDSCAPE = {"width": 1024, "height": 768}
TABLET_PORTRAIT = {"width": 768, "height": 1024}
SCREENSHOT_DIR = Path(os.environ.get("PAGE_SCREENSHOT_DIR", "/tmp"))  # page-*.png, to look at
WAIT_MS = 15_000  # captures write and fsync ~1 MB each; the suite shares 2 cores with other tests

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="session")
def agent(tmp_path_factory) -> Iterator[AgentProcess]:
    """A real ``python -m rdk_agent`` on the synthetic camera, shared by the page tests (they count deltas)."""
    root = tmp_path_factory.mktemp("page-agent")
    # quick pickup of deployed models, each serving at once (the champion/challenger policy has its own page test)
    config = {"inspection": {"poll_interval_s": 0.1, "intra_op_threads": 1, "promotion": "immediate"}}
    process = AgentProcess(root / "data", root / "models", token="page-test-token", config=config)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """The installed Chromium or Chrome, headless (never one Playwright downloads)."""
    if not CHROMIUM.exists():
        missing = f"no browser at {CHROMIUM} (apt-get install chromium, or set CHROME_BIN to a Chrome binary)"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class PageLog:
    """Console errors, uncaught exceptions and CSP violations seen by a page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("response", lambda r: r.status >= 400 and self.errors.append(f"HTTP {r.status} {r.url}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) at tablet landscape size."""
    ctx = browser.new_context(viewport=TABLET_LANDSCAPE)
    ctx.set_default_timeout(WAIT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A page whose console errors are collected in ``page.log``."""
    new_page = context.new_page()
    new_page.log = PageLog(new_page)
    return new_page


def open_logged_in(page: Page, agent: AgentProcess) -> Page:
    """Open the page through the ``?token=`` link and wait until the label buttons are drawn."""
    page.goto(f"{agent.url}/?token={agent.token}", wait_until="domcontentloaded")
    page.locator(".label-btn").first.wait_for()
    page.locator("#progress .progress-row[data-count]").first.wait_for()
    return page
