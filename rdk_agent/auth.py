"""API token: load or generate, check on requests, exchange for a session cookie.

Access policy (one rule, enforced for the whole app by :func:`install`):

* Every path under ``/api/v1/`` needs the token, reads included (status, labels and captures
  show what the station produces), except ``GET /api/v1/healthz`` and ``POST /api/v1/session``.
  ``GET /healthz`` needs no token either. Paths outside ``/api/v1`` (the operator page, its
  static files, ``/metrics``) are left to their own blueprints.
* The token is accepted as ``Authorization: Bearer <token>`` or as the ``rdk_session`` cookie,
  an HttpOnly, SameSite=Strict cookie holding an HMAC derived from the token (never the token
  itself). The page gets the cookie once, through ``/?token=...`` (answered with a redirect that
  drops the token from the URL) or ``POST /api/v1/session {"token"}``.
* Comparisons use :func:`hmac.compare_digest`. The token is never written to the log.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, current_app, redirect, request

from rdk_agent.durable import atomic_write
from rdk_agent.errors import ApiError

TOKEN_ENV = "RDK_AGENT_TOKEN"
TOKEN_FILE = "token"
COOKIE_NAME = "rdk_session"
PUBLIC_API_PATHS = {"/api/v1/healthz", "/api/v1/session"}
UNAUTHORIZED_MESSAGE = "missing or wrong token: send 'Authorization: Bearer <token>' or open /?token=<token>"


def load_or_create_token(data_dir: Path, env: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """Return ``(token, created)``: RDK_AGENT_TOKEN, else ``data_dir/token``, else a new one saved mode 0600."""
    from_env = (os.environ if env is None else env).get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env, False
    path = Path(data_dir) / TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token, False
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(24)
    atomic_write(path, token.encode("ascii") + b"\n", mode=0o600)
    return token, True


def session_value(token: str) -> str:
    """The cookie value for ``token``: an HMAC, so the cookie never carries the token itself."""
    return hmac.new(token.encode("utf-8"), b"rdk-agent-session-v1", hashlib.sha256).hexdigest()


def token_matches(candidate: str | None, token: str) -> bool:
    """Constant-time comparison of a presented token."""
    if not candidate:
        return False
    return hmac.compare_digest(candidate.encode("utf-8"), token.encode("utf-8"))


def credentials_valid(authorization: str | None, cookie: str | None, token: str) -> bool:
    """True for an ``Authorization: Bearer <token>`` header, else for a ``rdk_session`` cookie of the token."""
    header = authorization or ""
    if header[:7].lower() == "bearer ":
        return token_matches(header[7:].strip(), token)
    return token_matches(cookie, session_value(token))


def request_is_authorised(token: str) -> bool:
    """True when the current request carries the token (Bearer header) or a valid session cookie."""
    return credentials_valid(request.headers.get("Authorization"), request.cookies.get(COOKIE_NAME), token)


def require_token() -> None:
    """Raise 401 unless the current request is authorised; for blueprints outside ``/api/v1``."""
    if not request_is_authorised(current_app.config["RDK_TOKEN"]):
        raise ApiError(401, "unauthorized", UNAUTHORIZED_MESSAGE)


def set_session_cookie(response, token: str):
    """Attach the HttpOnly, SameSite=Strict session cookie to ``response``."""
    response.set_cookie(
        COOKIE_NAME, session_value(token), httponly=True, samesite="Strict", secure=request.is_secure, path="/"
    )
    return response


def install(app: Flask, token: str) -> None:
    """Enforce the access policy above on every request."""
    app.config["RDK_TOKEN"] = token

    @app.before_request
    def _check_token():
        path = request.path
        if path.startswith("/api/v1/") and path not in PUBLIC_API_PATHS:
            require_token()
        elif not path.startswith("/api/") and request.method == "GET" and "token" in request.args:
            return _exchange_query_token(token)
        return None


def _exchange_query_token(token: str):
    """``/page?token=T``: set the cookie and redirect to the same URL without the token."""
    if not token_matches(request.args.get("token"), token):
        raise ApiError(401, "unauthorized", "wrong token in the URL; use the one the agent printed at start")
    rest = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
    target = request.path + ("?" + urlencode(rest) if rest else "")
    return set_session_cookie(redirect(target, code=303), token)
