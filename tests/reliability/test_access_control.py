"""Access control over every route of the app's URL map: tokens, methods, ids that try to leave the data dir.

The routes come from ``app.url_map``, so a new endpoint is tested the day it is added: it must either
answer 401 without the token, or be named in PUBLIC with the reason it may be open.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import requests

from tests.reliability.conftest import TOKEN
from tests.reliability.support import Tally, all_captures, assert_json_error, png_bytes, raw_request

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[2]
PUBLIC = {
    "/healthz": "liveness for probes",
    "/api/v1/healthz": "liveness for probes",
    "/api/v1/session": "exchanges the token for the cookie; checks the token itself",
    "/": "the page, which logs in by itself",
    "/ui/<path:filename>": "the page's static files",
    "/static/<path:filename>": "Flask's default static route (no folder: always 404)",
    "/metrics": "read-only counters for Prometheus",
}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BAD_CREDENTIALS = [
    ("no token", {}),
    ("wrong bearer", {"Authorization": "Bearer wrong"}),
    ("token minus one char", {"Authorization": f"Bearer {TOKEN[:-1]}"}),
    ("token plus one char", {"Authorization": f"Bearer {TOKEN}x"}),
    ("basic scheme", {"Authorization": f"Basic {TOKEN}"}),
    ("token as the cookie", {"Cookie": f"rdk_session={TOKEN}"}),
    ("forged cookie", {"Cookie": "rdk_session=" + "0" * 64}),
    ("non-ascii bearer", {"Authorization": "Bearer t\u00f6ken".encode().decode("latin-1")}),
]


@pytest.fixture(scope="module")
def known(small_agent) -> dict[str, str]:
    """Values for the routes' arguments: one stored capture and its file's sha256."""
    r = requests.post(small_agent.api("captures"), files={"image": ("a.png", png_bytes())}, data={"label": "good"},
                      headers=small_agent.auth, timeout=30)  # fmt: skip
    assert r.status_code == 201, r.text
    return {
        "sample_id": r.json()["id"],
        "sha256": r.json()["files"]["rgb"]["sha256"],
        "filename": "app.js",
        "group": "line-1/part-7",
    }


def _fill(rule: str, values: dict[str, str]) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z0-9_]+)>", lambda m: values[m.group(1)], rule)


def test_every_protected_route_refuses_missing_and_wrong_tokens(small_agent, url_rules, known):
    assert set(PUBLIC) <= {rule for rule, _, _ in url_rules}, "PUBLIC names a route that no longer exists"
    before = all_captures(small_agent)
    protected = [(rule, methods) for rule, methods, _ in url_rules if rule not in PUBLIC]
    assert len(protected) >= 20
    for rule, methods in protected:
        path = _fill(rule, known)
        for method in sorted(methods):
            for what, headers in BAD_CREDENTIALS:
                status, resp_headers, body = raw_request(small_agent, method, path, headers=headers)
                error = assert_json_error(status, resp_headers, body, 401, (method, path, what))
                assert error["code"] == "unauthorized"
                assert TOKEN.encode() not in body
            # a token in the URL is for the page's one-time login only, never for the API
            status, resp_headers, body = raw_request(small_agent, method, f"{path}?token={TOKEN}")
            assert_json_error(status, resp_headers, body, 401, (method, path, "?token="))
            Tally.add(f"{method} {rule}", len(BAD_CREDENTIALS) + 1)
    assert all_captures(small_agent) == before  # the refused DELETE/PATCH/POST changed nothing


def test_public_routes_are_only_the_listed_ones(small_agent, url_rules, known):
    for rule, methods, _ in url_rules:
        if rule not in PUBLIC:
            continue
        for method in methods:
            status, _, body = raw_request(small_agent, method, _fill(rule, known))
            assert status != 401, (rule, body[:200])
            assert status < 500, (rule, body[:200])


def test_wrong_methods_get_405_json_with_allow(small_agent, url_rules, known):
    allowed: dict[str, set[str]] = {}
    for rule, methods, _ in url_rules:
        allowed.setdefault(rule, set()).update(methods)
    auth = small_agent.auth
    for rule, methods in allowed.items():
        for method in sorted(set(METHODS) - methods):
            status, headers, body = raw_request(small_agent, method, _fill(rule, known), headers=auth)
            error = assert_json_error(status, headers, body, 405, (method, rule))
            assert error["code"] == "method_not_allowed"
            assert set(headers["allow"].replace(" ", "").split(",")) >= methods, (rule, headers["allow"])
            Tally.add(f"{method} {rule}")


TRAVERSAL = ["..", "%2e%2e", "%2E%2E", "..%2f..%2findex.sqlite3", "%2e%2e%2f%2e%2e%2ftoken", "x%2F..%2F..%2Ftoken",
             "..%5c..%5cindex.sqlite3", "a..b", "%00", "a%00b", ".hidden", "~root", "%252e%252e%252f",
             "a" * 300, "%C0%AE%C0%AE%2F", "a%2F", "%2F"]  # fmt: skip


def test_ids_with_separators_or_dots_never_reach_a_file(small_agent, url_rules, known):
    secrets_on_disk = [b"SQLite format 3", TOKEN.encode()]
    for rule, methods, arguments in url_rules:
        if not arguments or rule.startswith(("/ui/", "/static/")):
            continue
        for method in sorted(methods):
            for bad in TRAVERSAL:
                path = _fill(rule, {name: bad for name in arguments})
                headers = {**small_agent.auth, "Content-Type": "application/json"}
                body = b'{"label": "good"}' if method == "PATCH" else None
                status, resp_headers, data = raw_request(small_agent, method, path, headers=headers, body=body)
                assert_json_error(status, resp_headers, data, (400, 404), (method, path))
                assert not any(secret in data for secret in secrets_on_disk)
            Tally.add(f"{method} {rule}", len(TRAVERSAL))
    assert requests.get(small_agent.api(f"captures/{known['sample_id']}"), headers=small_agent.auth).ok


STATIC_ESCAPES = [
    "/ui/../__init__.py", "/ui/%2e%2e/__init__.py", "/ui/..%2f__init__.py", "/ui/%2e%2e%2f%2e%2e%2fauth.py",
    "/ui/../../../../etc/passwd", "/ui/..%5c__init__.py", "/static/../app.py", "/static/%2e%2e%2fapp.py",
    "/ui//etc/passwd", "/ui/%2fetc%2fpasswd",
]  # fmt: skip


def test_static_files_are_served_only_from_their_folder(small_agent):
    assert raw_request(small_agent, "GET", "/ui/app.js")[0] == 200
    for path in STATIC_ESCAPES:
        status, headers, body = raw_request(small_agent, "GET", path)
        assert_json_error(status, headers, body, (400, 404), path)
        assert b"root:" not in body and b"import " not in body, path
    Tally.add("GET /ui/<path:filename>", len(STATIC_ESCAPES))


def test_token_comparisons_are_constant_time_by_inspection():
    """Every comparison that involves a token goes through hmac.compare_digest, never == or !=."""
    auth = (REPO / "rdk_agent" / "auth.py").read_text()
    tree = ast.parse(auth)
    matcher = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "token_matches")
    assert "hmac.compare_digest" in ast.unparse(matcher)
    for path in sorted((REPO / "rdk_agent").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
                operands = [node.left, *node.comparators]
                text = " ".join(ast.unparse(o) for o in operands if not isinstance(o, ast.Constant)).lower()
                assert "token" not in text and "cookie" not in text and "session_value" not in text, (path, text)
