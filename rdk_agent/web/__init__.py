"""The operator page at ``/``: one HTML file plus static ES modules, no build step and no CDN.

The blueprint sets strict security headers on everything it serves: a content security policy
that allows only same-origin scripts and styles (no inline script), no sniffing, no referrer.
The page authenticates by exchanging the token (login form or ``?token=`` link) for the agent's
session cookie through ``POST /api/v1/session``; every API call after that rides on the cookie.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template

import rdk_agent

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/ui",
)


@bp.get("/")
def index() -> Response:
    """The operator page; the token never needs to be in the HTML, the page logs in by itself."""
    response = Response(render_template("index.html", version=rdk_agent.__version__))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.after_request
def _security_headers(response: Response) -> Response:
    """Security headers on the page and its static files."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
