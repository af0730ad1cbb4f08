"""Hostile ``meta`` on capture uploads (multipart) and camera captures (JSON): a 201 that stores exactly what
was sent, or a 4xx JSON error that stores nothing, never a 5xx.

Deep nesting (past the limit, past ``json``'s own recursion limit), NaN and infinities, integers outside
64 bits, numbers that overflow a float, invalid UTF-8, lone surrogates, very long text and keys, and
hypothesis-built JSON mixing them. test_fuzz.py fuzzes the other upload fields.
"""

from __future__ import annotations

import json

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdk_agent.api.meta import MAX_DEPTH
from tests.reliability.support import Tally, all_captures, png_bytes

pytestmark = pytest.mark.reliability

PNG = png_bytes(64, 48, seed=5)
META_LIMIT = 64 * 1024  # the agent's default max_meta_bytes


def nested(levels: int, leaf: str = "1") -> str:
    """``levels`` arrays and objects inside each other around ``leaf``."""
    opening = "".join('{"k":' if i % 2 else "[" for i in range(levels))
    closing = "".join("}" if i % 2 else "]" for i in reversed(range(levels)))
    return "{" + '"k":' + opening + leaf + closing + "}"


MALFORMED: dict[str, str | bytes] = {
    "one level too deep": nested(MAX_DEPTH),
    "900 levels": nested(900),
    "5000 levels (json's RecursionError)": nested(5000),
    "30000 levels": nested(30000),
    "unclosed 30000 levels": "[" * 30000,
    "NaN": '{"x": NaN}',
    "Infinity": '{"x": [1, Infinity]}',
    "-Infinity": '{"x": {"y": -Infinity}}',
    "float overflow": '{"x": 1e400}',
    "integer over 64 bits": '{"x": 18446744073709551616}',
    "5000-digit integer": '{"x": ' + "9" * 5000 + "}",
    "invalid UTF-8": b'{"x": "\xff\xfe\xc3"}',
    "overlong UTF-8": b'{"x": "\xc0\xaf"}',
    "lone surrogate": '{"x": "\\ud800"}',
    "lone surrogate key": '{"\\udfff": 1}',
    "very long string": '{"x": "' + "x" * (2 * META_LIMIT) + '"}',
    "very long key": '{"' + "k" * (2 * META_LIMIT) + '": 1}',
    "many keys": json.dumps({f"k{i}": i for i in range(20000)}),
    "not an object": "[1, 2]",
    "empty": "",
    "not JSON": "{'x': 1}",
    "trailing garbage": '{"x": 1} {"y": 2}',
}


# A form field's invalid UTF-8 reaches the app as U+FFFD, a plain character in a JSON body (valid UTF-8);
# null in a JSON body means no meta, as leaving it out does.
FORM_ONLY = {"raw U+FFFD (what invalid UTF-8 decodes to)": '{"x": "\ufffd"}', "null": "null"}


def _upload(agent, meta: str | bytes) -> requests.Response:
    files = {"image": ("m.png", PNG), "meta": (None, meta.encode() if isinstance(meta, str) else meta)}
    return requests.post(agent.api("captures"), files=files, data={"label": "good"}, headers=agent.auth, timeout=30)


def _capture(agent, meta: str | bytes) -> requests.Response:
    text = meta if isinstance(meta, bytes) else meta.encode("utf-8", "surrogatepass")
    headers = {**agent.auth, "Content-Type": "application/json"}
    body = b'{"label": "good", "meta": ' + text + b"}"
    return requests.post(agent.api("captures"), data=body, headers=headers, timeout=30)


def _refused(r: requests.Response, what: str) -> dict:
    assert 400 <= r.status_code < 500, (what, r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json"), (what, r.text[:300])
    error = r.json()["error"]
    assert error["code"] and error["message"] and "Traceback" not in r.text, (what, error)
    return error


@pytest.mark.parametrize("case", sorted([*MALFORMED, *FORM_ONLY]))
def test_malformed_meta_is_a_4xx_json_error_that_stores_nothing(small_agent, case):
    meta = MALFORMED[case] if case in MALFORMED else FORM_ONLY[case]
    before = len(all_captures(small_agent))
    _refused(_upload(small_agent, meta), f"multipart: {case}")
    if case in MALFORMED:
        _refused(_capture(small_agent, meta), f"json: {case}")
    Tally.add("POST /api/v1/captures (malformed meta)", 2)
    assert len(all_captures(small_agent)) == before, f"{case}: a refused capture was stored"


def test_meta_at_the_limits_is_stored_as_sent(small_agent):
    for meta in (json.loads(nested(MAX_DEPTH - 1)), {"x": "y" * (META_LIMIT - 100)},
                 {"big": 2**63 - 1, "small": -(2**63), "tiny": 5e-324, "text": "\u00e9\u6f22\U0001f600"}):  # fmt: skip
        for r in (_upload(small_agent, json.dumps(meta)), _capture(small_agent, json.dumps(meta))):
            assert r.status_code == 201, r.text[:300]
            stored = requests.get(small_agent.api(f"captures/{r.json()['id']}"), headers=small_agent.auth).json()
            assert {k: v for k, v in stored["meta"].items() if k not in ("upload", "camera")} == meta


leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["\ud800", "x" * 70_000, "\udc00y"])
)
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=40,
)
meta_texts = st.one_of(
    json_values.map(lambda v: json.dumps({"v": v})),
    st.integers(1, 3000).map(nested),
    st.tuples(st.integers(1, 40), json_values).map(lambda t: "[" * t[0] + json.dumps(t[1]) + "]" * t[0]),
    st.binary(max_size=64).map(lambda b: b'{"x": "' + b + b'"}'),
    st.text(max_size=40),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=meta_texts, route=st.sampled_from(["multipart", "json"]))
def test_any_meta_is_stored_as_sent_or_refused_with_a_4xx(small_agent, meta, route):
    r = _capture(small_agent, meta) if route == "json" else _upload(small_agent, meta)
    Tally.add("POST /api/v1/captures (fuzzed meta)")
    if r.status_code == 201:
        stored = requests.get(small_agent.api(f"captures/{r.json()['id']}"), headers=small_agent.auth).json()["meta"]
        sent = json.loads(meta if isinstance(meta, str) else meta.decode("utf-8"))
        assert {k: v for k, v in stored.items() if k not in ("upload", "camera")} == sent
    else:
        _refused(r, repr(meta)[:200])


HOSTILE_VALUES = [nested(900), "NaN", "-Infinity", "1e400", "18446744073709551616", '"\\ud800"', '"' + "g" * 5000 + '"',
                  '"\\u0000"', "[]", "{}", "true", '"go\\nod"']  # fmt: skip


def test_hostile_label_and_group_values_are_4xx_json_errors(small_agent):
    """The other fields that come as JSON or form text: label and group on every route that takes them."""
    sample = requests.post(small_agent.api("captures"), files={"image": ("a.png", PNG)}, data={"label": "gap"},
                           headers=small_agent.auth, timeout=30).json()["id"]  # fmt: skip
    before = len(all_captures(small_agent))
    headers = {**small_agent.auth, "Content-Type": "application/json"}
    for value in HOSTILE_VALUES:
        for field in ("label", "group"):
            body = ('{"' + field + '": ' + value + "}").encode("utf-8", "surrogatepass")
            for method, path in (("POST", "captures"), ("PATCH", f"captures/{sample}"), ("PUT", "current-group")):
                if path == "current-group" and field == "label":
                    continue
                r = requests.request(method, small_agent.api(path), data=body, headers=headers, timeout=30)
                _refused(r, f"{method} {path} {field}={value[:40]}")
        files = {"image": ("a.png", PNG), "label": (None, value.encode("utf-8", "surrogatepass"))}
        r = requests.post(small_agent.api("captures"), files=files, headers=small_agent.auth, timeout=30)
        _refused(r, f"multipart label={value[:40]}")
        Tally.add("label/group (hostile JSON values)", 6)
    for text in (nested(900), "g" * 65, "a\x00b", "line\nbreak", "a\tb"):  # a form field is text, not JSON
        files = {"image": ("a.png", PNG), "label": (None, b"good"), "group": (None, text.encode())}
        r = requests.post(small_agent.api("captures"), files=files, headers=small_agent.auth, timeout=30)
        _refused(r, f"multipart group={text[:40]!r}")
    assert len(all_captures(small_agent)) == before
    assert requests.get(small_agent.api(f"captures/{sample}"), headers=small_agent.auth).json()["label"] == "gap"
