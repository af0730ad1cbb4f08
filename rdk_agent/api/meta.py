"""A capture's ``meta`` from a client: a JSON object of bounded size and depth, with plain JSON values.

The record is stored in the index and goes into every exported manifest, so what is refused here is
what would break a reader later: nesting past :data:`MAX_DEPTH` (``json`` itself raises
``RecursionError`` near 1,000 levels), NaN or infinite numbers (not JSON), integers outside 64 bits,
text that is not valid Unicode (lone surrogates; a form field that was not valid UTF-8), and more than
``max_bytes`` of JSON in all.
Every refusal is an :class:`~rdk_agent.errors.ApiError` 400 ``bad_parameter`` that says what is wrong.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

from rdk_agent.errors import ApiError

MAX_DEPTH = 16  # objects and arrays inside meta, meta itself included
INT_RANGE = (-(2**63), 2**63 - 1)
REPLACEMENT = "\ufffd"  # what werkzeug decodes a form field's invalid UTF-8 to; in JSON text, send it escaped


def parse_meta(value: object, max_bytes: int) -> dict:
    """``meta`` as sent (None, JSON text from a form field, or an already parsed JSON value), checked."""
    if value is None:
        return {}
    if isinstance(value, str):
        value = _loads(value, max_bytes)
    if not isinstance(value, dict):
        raise _bad("meta must be a JSON object")
    _check_values(value)
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > max_bytes:
        raise _bad(f"meta is {size} bytes of JSON; at most {max_bytes} (max_meta_bytes)")
    return value


def _loads(text: str, max_bytes: int) -> object:
    if REPLACEMENT in text:
        raise _bad("meta is not valid UTF-8 (the form field decoded with U+FFFD in place of bad bytes)")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise _bad("meta is not valid Unicode text") from None
    if size > max_bytes:
        raise _bad(f"meta is {size} bytes; at most {max_bytes} (max_meta_bytes)")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise _bad(f"meta is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise _bad(f"meta must be a JSON object: {exc}") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _check_values(meta: dict) -> None:
    """Depth, numbers and text of every value, walked without recursion."""
    pending: list[tuple[object, int]] = [(meta, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (dict, list)):
            pending.extend(_children(value, depth))
        else:
            _check_scalar(value)


def _children(container: dict | list, depth: int) -> Iterator[tuple[object, int]]:
    """The values of a container at ``depth``, each with its own depth; the keys' text checked on the way."""
    if depth > MAX_DEPTH:
        raise _bad(f"meta is nested deeper than {MAX_DEPTH} levels")
    items = container.items() if isinstance(container, dict) else enumerate(container)
    for key, child in items:
        if isinstance(key, str):
            _check_text(key)
        yield child, depth + 1


def _check_scalar(value: object) -> None:
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise _bad("meta holds an integer outside the 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _bad("meta holds a number that is not finite (NaN, Infinity or out of range)")
    else:
        raise _bad(f"meta holds a {type(value).__name__}, which is not a JSON value")


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad("meta holds text that is not valid Unicode (a lone surrogate)") from None


def _bad(message: str) -> ApiError:
    return ApiError(400, "bad_parameter", message)
