"""Request bodies judged from their headers, before waitress reads or spools a byte of them.

waitress reads a request's whole body before the app sees the request, spilling it past 512 KiB
(``inbuf_overflow``) into a temp file. Left alone, any client, token or not, could make the board
spool bodies up to the server's limit on every connection. So once a request's headers are parsed:

* a body over :data:`OPEN_BODY_BYTES` (or of unknown length: chunked) needs the token (Bearer or the
  session cookie, checked as the app checks them): without it the answer is 401, or 413 on the
  public routes (``POST /api/v1/session`` takes a small body and no token);
* bodies over ``max_upload_bytes`` are waitress's own 413 (``max_request_body_size``);
* the bodies being received at once, all connections together, stay within ``max_buffered_bytes``
  (a chunked body counts as ``max_upload_bytes``): one more is answered 503 with ``Retry-After``.

A refused request is answered at once: it never gets ``100 Continue`` (waitress would invite the
body of a request it had already refused), and whatever the client sends after the headers is read
and dropped until the connection closes.
"""

from __future__ import annotations

import threading
from functools import partial
from http import HTTPStatus

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.utilities import Error
from werkzeug.http import parse_cookie

from rdk_agent.auth import COOKIE_NAME, PUBLIC_API_PATHS, UNAUTHORIZED_MESSAGE, credentials_valid

OPEN_BODY_BYTES = 64 * 1024  # what a request without the token may send (held in memory, never spooled)
RETRY_AFTER_S = 1


class Refusal(Error):
    """A request refused from its headers; ``body`` is the JSON error's message."""

    def __init__(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.code = status
        self.reason = HTTPStatus(status).phrase
        self.headers = headers


class BodyGuard:
    """The admission rule above, and the tally of body bytes being received (shared by all connections)."""

    def __init__(self, token: str, max_buffered_bytes: int) -> None:
        self.token = token
        self.max_buffered_bytes = max_buffered_bytes
        self.buffered = 0
        self._lock = threading.Lock()

    def admit(self, path: str, headers: dict[str, str], size: int) -> Refusal | None:
        """Reserve ``size`` body bytes for a request (waitress's header names), or say why not."""
        if size > OPEN_BODY_BYTES and not self._authorised(headers):
            if path in PUBLIC_API_PATHS:
                return Refusal(413, f"request body exceeds the {OPEN_BODY_BYTES} bytes this route accepts")
            return Refusal(401, UNAUTHORIZED_MESSAGE)
        with self._lock:
            if self.buffered + size > self.max_buffered_bytes:
                message = (
                    f"the agent is receiving {self.buffered} bytes of other request bodies and takes "
                    f"{self.max_buffered_bytes} at once (max_buffered_bytes); retry shortly"
                )
                return Refusal(503, message, (("Retry-After", str(RETRY_AFTER_S)),))
            self.buffered += size
        return None

    def release(self, size: int) -> None:
        """Give back what :meth:`admit` reserved, once the body is gone."""
        with self._lock:
            self.buffered -= size

    def _authorised(self, headers: dict[str, str]) -> bool:
        cookie = parse_cookie(headers.get("COOKIE", "")).get(COOKIE_NAME)
        return credentials_valid(headers.get("AUTHORIZATION"), cookie, self.token)


class GuardedParser(HTTPRequestParser):
    """waitress's request parser, with the body admitted by a :class:`BodyGuard` once the headers are in."""

    reserved = 0  # body bytes reserved with the guard until close()
    # waitress's own attributes that received() sets (waitress has no type hints)
    error: Error | None
    completed: bool

    def __init__(self, adj, guard: BodyGuard) -> None:
        super().__init__(adj)
        self.guard = guard

    def received(self, data: bytes) -> int:
        """Parse ``data``; when the headers end, admit or refuse the body before any of it is read."""
        judged = self.headers_finished
        consumed = super().received(data)
        if judged or not self.headers_finished:
            return consumed
        if self.error is None and not self.completed:  # a body follows
            size = self.adj.max_request_body_size if self.chunked else self.content_length
            self.error = self.guard.admit(self.path, self.headers, size)
            self.reserved = 0 if self.error else size
        if self.error is None:
            return consumed
        self.completed = True
        self.expect_continue = False  # never invite the body of a refused request
        return len(data)  # the body's first bytes, dropped with the rest

    def close(self) -> None:
        """Drop the body (its temp file) and give its reservation back."""
        super().close()
        self.guard.release(self.reserved)
        self.reserved = 0


class GuardedChannel(HTTPChannel):
    """An HTTP channel whose requests are admitted by the server's ``body_guard``."""

    request: HTTPRequestParser | None  # waitress's parser of the request being read

    def __init__(self, server, sock, addr, adj, map=None) -> None:
        super().__init__(server, sock, addr, adj, map)
        self.parser_class = partial(GuardedParser, guard=server.body_guard)

    def received(self, data: bytes) -> bool:
        """Drop input after a refused request (its body) until the answer is sent and the connection closes."""
        if self.requests and self.requests[-1].error is not None:
            return False
        return super().received(data)

    def handle_close(self) -> None:
        """Also release a request cut off mid-body (its temp file and its share of the guard's tally)."""
        if self.request is not None:
            self.request.close()
            self.request = None
        super().handle_close()
