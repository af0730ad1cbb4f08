"""Secrets and headers: the token never reaches the log, the page's CSP forbids inline script and CDNs,
the generated token file is 0600 whatever the umask.

tests/page/test_page_security.py proves in Chromium that the CSP is enforced; this module checks the
headers on every page route and asset without a browser, and scans the shipped page files for
inline code and off-site URLs.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
import requests

from rdk_agent.auth import session_value
from tests.reliability.support import png_bytes

pytestmark = pytest.mark.reliability

WEB = Path(__file__).resolve().parents[2] / "rdk_agent" / "web"
TOKEN = "s3cret-token-never-logged-7d1e"


def test_token_never_appears_in_the_log(agent_process):
    agent = agent_process(token=TOKEN, env={"RDK_AGENT_LOG_LEVEL": "DEBUG"})
    cookie = session_value(TOKEN)
    browser = requests.Session()
    assert browser.get(f"{agent.url}/?token={TOKEN}&x=1", timeout=10).status_code == 200  # cookie exchange
    assert browser.get(agent.api("status"), timeout=10).ok
    assert requests.post(agent.api("session"), json={"token": TOKEN}, timeout=10).ok
    assert requests.get(agent.api("captures"), headers={"Cookie": f"rdk_session={cookie}"}, timeout=10).ok
    for bad in (f"{TOKEN}x", TOKEN[:-1], TOKEN.upper()):
        assert (
            requests.get(agent.api("status"), headers={"Authorization": f"Bearer {bad}"}, timeout=10).status_code == 401
        )
        assert requests.get(f"{agent.url}/?token={bad}", timeout=10).status_code == 401
    for url in (agent.api(f"status?token={TOKEN}"), f"{agent.url}/no/such/page?token={TOKEN}"):
        requests.get(url, timeout=10)
    r = requests.post(agent.api("captures"), files={"image": ("u.png", png_bytes())},
                      data={"label": "good", "meta": '{"note": "x"}'}, headers=agent.auth, timeout=30)  # fmt: skip
    assert r.status_code == 201
    requests.post(agent.api("captures"), data=b"[" * 20_000, headers={**agent.auth, "Content-Type": "application/json"})
    agent.stop()
    log = agent.log()
    assert "Listening on" in log
    for secret in (TOKEN, TOKEN[:12], cookie, TOKEN.upper()):
        assert secret not in log, f"a credential appears in the agent's log: {secret[:6]}..."


def test_page_routes_and_assets_carry_a_strict_csp(agent_process):
    agent = agent_process()
    assets = sorted(p.name for p in (WEB / "static").iterdir() if p.is_file())
    assert assets
    for path in ["/", *(f"/ui/{name}" for name in assets)]:
        r = requests.get(f"{agent.url}{path}", timeout=10)
        assert r.status_code == 200, path
        csp = r.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
        assert directives["script-src"] == "'self'" and directives["default-src"] == "'self'", csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp, csp
        assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["X-Frame-Options"] == "DENY"
    html = requests.get(f"{agent.url}/", timeout=10).text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script> in the page"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler in the page"
    for path in [*WEB.rglob("*.html"), *WEB.rglob("*.js"), *WEB.rglob("*.css")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", text), f"off-site resource in {path.name}"
        assert not re.search(r"@import\s+url\(\s*[\"']?(?:https?:)?//", text), f"off-site import in {path.name}"


def test_generated_token_file_is_0600_even_with_a_permissive_umask(agent_process):
    old = os.umask(0)
    try:
        agent = agent_process(env={"RDK_AGENT_TOKEN": ""})  # the child inherits umask 0
    finally:
        os.umask(old)
    token_file = agent.data_dir / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 24 and agent.log().count(token) == 1  # shown once, when generated
    agent.stop()
    agent.start()
    assert token not in agent.log()  # never again
    assert requests.get(agent.api("status"), headers={"Authorization": f"Bearer {token}"}, timeout=10).ok
    assert list(agent.data_dir.glob(".token*")) == []  # no temp file left beside it
