#!/usr/bin/env python3
"""Wait until the agent on this board reports a model file as active (stdlib only, Python 3.10).

``deploy/deploy_model.sh`` runs, over ssh, after rsyncing the model into RDK_DIR/models::

    python3 RDK_DIR/app/deploy/board/wait_model.py --dir RDK_DIR --sha256 HEX [--timeout S] < token

It polls GET /api/v1/model (token from stdin, else RDK_DIR/etc/agent.env, else RDK_DIR/data/token)
until ``active.sha256`` is HEX (exit 0), or ``last_error.file_sha256`` is HEX: the agent checked the
file and refused it (exit 3, printing its reason), or the timeout passes (exit 4).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from board_env import agent_token, agent_url, http_get

EXIT_REFUSED, EXIT_TIMEOUT, EXIT_AUTH = 3, 4, 5


def describe(active: dict | None) -> str:
    """One line about the active model (or the rules fallback)."""
    if not active:
        return "no model (the rule-based evaluator is answering)"
    card = active.get("card") or {}
    labels = ", ".join(card.get("labels", []))
    return f"{card.get('name', '?')} sha256 {str(active.get('sha256', '?'))[:12]}… labels [{labels}]"


def poll(url: str, token: str, sha256: str, timeout: float) -> int:
    """Poll ``url``/api/v1/model; see the module docstring for the exit codes."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        try:
            status, body = http_get(f"{url}/api/v1/model", token, timeout=5.0)
        except OSError as exc:
            status, body, last = 0, b"", f"agent not reachable at {url}: {getattr(exc, 'reason', exc)}"
        if status in (401, 403):
            print(f"model: the agent refused the token ({status}); set RDK_AGENT_TOKEN to the agent's token")
            return EXIT_AUTH
        if status == 200:
            info = json.loads(body)
            active, error = info.get("active"), info.get("last_error")
            if active and active.get("sha256") == sha256:
                load_ms = active.get("load_ms")
                print(f"model: active on the board: {describe(active)}" + (f", load {load_ms} ms" if load_ms else ""))
                return 0
            if error and error.get("file_sha256") == sha256:
                why = " ".join(str(error[k]) for k in ("reason", "code") if error.get(k)) or "no reason given"
                print(f"model: REFUSED by the agent ({why}): {error.get('message', '')}")
                print(f"model: still serving: {describe(active)}")
                return EXIT_REFUSED
            last = f"state {info.get('state', '?')}, serving {describe(active)}"
        elif status:
            last = f"HTTP {status}: {body[:200].decode(errors='replace')}"
        if time.monotonic() >= deadline:
            print(f"model: the agent did not report sha256 {sha256[:12]}… within {timeout:.0f} s ({last})")
            return EXIT_TIMEOUT
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dir", type=Path, required=True, help="RDK_DIR on this board")
    parser.add_argument("--sha256", required=True, help="sha256 of the deployed model file")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    token = agent_token(args.dir, "" if sys.stdin.isatty() else sys.stdin.read())
    return poll(agent_url(args.dir), token, args.sha256.lower(), args.timeout)


if __name__ == "__main__":
    sys.exit(main())
