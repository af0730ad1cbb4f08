"""Serve the app through waitress.

Why waitress: it is pure Python (nothing to compile on the board's aarch64 Ubuntu, installs from a
wheel-less sdist too), production-grade, and thread-based. Threads suit this agent: MJPEG viewers
and dataset downloads are long-lived connections that mostly wait on the network, inference
releases the GIL inside ONNX Runtime and OpenCV, and one process with a thread pool shares a single
camera, a single loaded model and a single SQLite index within the board's 4 GB, where pre-forked
workers would each hold a copy of the model and fight over the camera.

Limits: ``threads`` workers (16 by default; at most ``max_streams`` of them can be held by preview
viewers), ``connection_limit`` sockets, request bodies judged from their headers before any of
them is read (:mod:`rdk_agent.body_guard`: over ``max_upload_bytes`` 413, a body without the token
401, more than ``max_buffered_bytes`` being received at once 503), and output buffered in 1 MiB
buffers per connection: waitress keeps what it already sent in a buffer until that buffer reaches
the high watermark, so 8 MiB made a streamed tar.gz export hold ~18 MiB, 1 MiB ~4 MiB (the plain
tar is sent from the export's own reader and buffers nothing).
waitress's own refusals (413, malformed requests) are JSON errors like the app's.
"""

from __future__ import annotations

import ctypes
import json
import logging
import signal
from collections.abc import Callable

from flask import Flask
from waitress import create_server
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask

from rdk_agent.body_guard import BodyGuard, GuardedChannel, Refusal
from rdk_agent.config import AgentConfig
from rdk_agent.errors import status_code_name

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # glibc mallopt parameter (malloc.h)


def tune_malloc() -> None:
    """Cap glibc at two malloc arenas (a no-op where libc is not glibc); call before the server threads start.

    glibc gives each thread its own arena and keeps what it frees there, so a 16-thread server grows with
    its thread count. The mmap threshold is left dynamic on purpose: a fixed 128 KiB threshold made every
    frame-sized buffer a fresh mmap (about 1,160 page faults per inference against about 40), slowing the
    inspect path and halving export throughput. Measured on 8 tar exports of 1,000 captures (177 MiB) in a
    row: fixed 128 KiB threshold ~165-190 MB/s; arenas capped only, with the manifest streamed and 1 MiB
    export chunks, 330-470 MB/s with RSS 149 -> 161-169 MiB and no further growth; a fixed 1 or 4 MiB
    threshold kept RSS at 162 MiB but exported at only 190-290 MB/s.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_ARENA_MAX, 2)
    except (OSError, AttributeError):
        return


class JsonErrorTask(ErrorTask):
    """Refusals from the headers (the body guard's; waitress's: over the limit, malformed) as ``{"error": ...}``."""

    def execute(self) -> None:
        """Write the JSON error and close the connection (the rest of the request is not read)."""
        error = self.request.error
        if isinstance(error, Refusal):
            message = error.body
            self.response_headers.extend(error.headers)
        elif error.code == 413:
            limit = self.channel.server.upload_limit
            message = f"request body exceeds the configured limit of {limit} bytes (max_upload_bytes)"
        else:
            message = f"{error.reason}: {error.body}"
        body = json.dumps({"error": {"code": status_code_name(error.code), "message": message}}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class JsonErrorChannel(GuardedChannel):
    """An HTTP channel with the body guard, whose server-level errors are JSON."""

    error_task_class = JsonErrorTask


def serve(app: Flask, config: AgentConfig, on_ready: Callable[[str, int], None] | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then close the app's services."""
    server = create_server(
        app,
        host=config.host,
        port=config.port,
        threads=config.threads,
        connection_limit=config.connection_limit,
        max_request_body_size=config.max_upload_bytes + 1,  # waitress refuses a length >= this one
        outbuf_high_watermark=1024 * 1024,
        channel_timeout=120,
        asyncore_use_poll=True,
        ident="rdk-agent",
    )
    guard = BodyGuard(app.config["RDK_TOKEN"], config.max_buffered_bytes)
    for listener in [server, *getattr(server, "map", {}).values()]:  # one, or several for a multi-address host
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = JsonErrorChannel
            listener.body_guard = guard
            listener.upload_limit = config.max_upload_bytes  # for JsonErrorTask's message
    port = server.effective_port
    if on_ready is not None:
        on_ready(config.host, port)

    services = app.extensions["rdk"]

    def _stop(signum, frame):
        # End preview streams first: waitress waits (5 s at most) for busy threads when the loop stops.
        services.closing.set()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        server.run()  # returns after SystemExit/KeyboardInterrupt, with its worker threads stopped
    finally:
        log.info("stopping")
        services.close()
        server.close()
