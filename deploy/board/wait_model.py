#!/usr/bin/env python3
"""Wait for the board's verdict on a model file and print it (stdlib only, Python 3.10).

``deploy/deploy_model.sh`` runs, over ssh, after rsyncing the model into RDK_DIR/models::

    python3 RDK_DIR/app/deploy/board/wait_model.py --dir RDK_DIR --sha256 HEX [--timeout S] < token

Token from stdin, else RDK_DIR/etc/agent.env, else RDK_DIR/data/token. An agent with the model registry
(``GET /api/v1/model`` has ``champion``) keeps the file as a version, scores it on its golden set and
judges it against the champion; this polls ``GET /api/v1/models/HEX`` until the verdict is in:

* ``promoted``: the version is the champion and serves (exit 0);
* ``waiting``: the operator decides, or it runs in shadow until its frame count (exit 0);
* ``refused``: worse on the golden set, or unfit to load (exit 3); the champion keeps serving.

Both models' golden-set accuracy and macro-F1 are printed side by side. A version is judged only once
the agent has checked this file (``file.sha256`` is HEX and it is not loading), so an earlier state of
the same bytes is not taken for the answer. The timeout exits 4 naming what is still pending, a
refused token 5. An agent without the registry is waited on as before: ``active.sha256`` is HEX
(exit 0) or ``last_error`` names it (exit 3).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from board_env import agent_token, agent_url, http_get

EXIT_REFUSED, EXIT_TIMEOUT, EXIT_AUTH = 3, 4, 5


class AuthRefused(Exception):
    """The agent answered 401 or 403."""


def describe(active: dict | None) -> str:
    """One line about the active model (or the rules fallback)."""
    if not active:
        return "no model (the rule-based evaluator is answering)"
    card = active.get("card") or {}
    labels = ", ".join(card.get("labels", []))
    return f"{card.get('name', '?')} sha256 {str(active.get('sha256', '?'))[:12]}… labels [{labels}]"


def _get(url: str, token: str, path: str) -> tuple[int, dict | str]:
    """(status, JSON body) of GET url/api/v1/path; status 0 and the reason when the agent is not reachable."""
    try:
        status, body = http_get(f"{url}/api/v1/{path}", token, timeout=5.0)
    except OSError as exc:
        return 0, f"agent not reachable at {url}: {getattr(exc, 'reason', exc)}"
    if status in (401, 403):
        raise AuthRefused(status)
    try:
        return status, json.loads(body) if status == 200 else f"HTTP {status}: {body[:200].decode(errors='replace')}"
    except ValueError:
        return 0, f"HTTP {status} with a body that is not JSON"


def _figure(value: object, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "n/a"


def scores_table(verdict: dict | None, version: dict, champion: dict | None) -> list[str]:
    """Golden-set accuracy and macro-F1 of champion and challenger, side by side (the verdict's figures
    when there is one, else the versions' current scores)."""

    def scores(v: dict | None) -> dict | None:
        return None if v is None else {"sha256": v["sha256"], **(v.get("golden") or {})}

    rows = {
        "champion": verdict["champion"] if verdict else scores(champion),
        "challenger": verdict["challenger"] if verdict else scores(version),
    }
    lines = [f"  {'golden set':<12}{'accuracy':>10}{'macro-F1':>10}{'frames':>8}  model"]
    for role, row in rows.items():
        if row is None:
            lines.append(f"  {role:<12}{'none (no champion on this board before)':>28}")
            continue
        frames = row.get("n") if row.get("n") is not None else "n/a"
        acc, f1 = _figure(row.get("accuracy")), _figure(row.get("macro_f1"))
        lines.append(f"  {role:<12}{acc:>10}{f1:>10}{frames!s:>8}  {str(row.get('sha256', '?'))[:12]}…")
    return lines


def report(decision: str, reason: str, verdict: dict | None, version: dict, info: dict) -> None:
    """Print the verdict line, the scores side by side and what serves now."""
    print(f"model: verdict: {decision} ({reason or 'no reason given'})")
    champion = info.get("champion")
    if champion is not None and champion.get("sha256") == version["sha256"]:
        champion = None  # promoted: the side-by-side shows the champion it was judged against
    for line in scores_table(verdict, version, champion):
        print(line)
    print(f"model: serving: {describe(info.get('active'))}")


def judge(version: dict, info: dict) -> tuple[int | None, str]:
    """(exit status, or None while pending; what is pending) for one version of the registry."""
    state, verdict, reason = version["state"], version.get("verdict"), version.get("reason") or ""
    if state == "refused":
        report("refused", reason, verdict, version, info)
        return EXIT_REFUSED, reason
    if state == "champion":
        report("promoted", verdict["reason"] if verdict else reason, verdict, version, info)
        return 0, reason
    if state == "retired":  # replaced by a newer challenger: it waits for that file to go, or times out
        return None, f"retired: {reason}"
    if verdict is not None and verdict.get("decision") == "waiting":
        report("waiting", verdict["reason"], verdict, version, info)
        return 0, reason
    if version.get("golden") is not None:  # scored on the golden set, undecided: it counts its shadow frames
        report("waiting", f"{reason}; judged again when the shadow frames are in", None, version, info)
        return 0, reason
    return None, f"challenger, {reason or 'not judged yet'}"


def legacy(info: dict, sha256: str) -> tuple[int | None, str]:
    """An agent without the registry: the file serves, or the agent refused it."""
    active, error = info.get("active"), info.get("last_error")
    if active and active.get("sha256") == sha256:
        load_ms = active.get("load_ms")
        print(f"model: active on the board: {describe(active)}" + (f", load {load_ms} ms" if load_ms else ""))
        return 0, "active"
    if error and error.get("file_sha256") == sha256:
        why = " ".join(str(error[k]) for k in ("reason", "code") if error.get(k)) or "no reason given"
        print(f"model: verdict: refused ({why}: {error.get('message', '')})")
        print(f"model: serving: {describe(active)}")
        return EXIT_REFUSED, why
    return None, f"state {info.get('state', '?')}, serving {describe(active)}"


def check(url: str, token: str, sha256: str) -> tuple[int | None, str]:
    """One look at the agent: (exit status or None, what is pending)."""
    status, info = _get(url, token, "model")
    if not isinstance(info, dict):
        return None, str(info)
    if "champion" not in info:
        return legacy(info, sha256)
    if (info.get("file") or {}).get("sha256") != sha256 or info.get("loading"):
        return None, "the agent has not checked the file yet"
    status, version = _get(url, token, f"models/{sha256}")
    if isinstance(version, dict):
        fresh = _get(url, token, "model")[1]  # what serves after the version's latest change
        return judge(version, fresh if isinstance(fresh, dict) else info)
    return None, "no version for the file yet" if status == 404 else str(version)


def poll(url: str, token: str, sha256: str, timeout: float) -> int:
    """Look every half second until there is a verdict; see the module docstring for the exit codes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            code, pending = check(url, token, sha256)
        except AuthRefused as exc:
            print(f"model: the agent refused the token ({exc}); set RDK_AGENT_TOKEN to the agent's token")
            return EXIT_AUTH
        if code is not None:
            return code
        if time.monotonic() >= deadline:
            print(f"model: no verdict on sha256 {sha256[:12]}… within {timeout:.0f} s; pending: {pending}")
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
