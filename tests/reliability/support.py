"""Helpers shared by the reliability tests: paging through captures, on-disk checks, tmpfs mounts, timing."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import os
import select
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import requests

FULL = os.environ.get("RDK_RELIABILITY_FULL", "") not in ("", "0")
OUT_DIR = Path(__file__).resolve().parents[2] / "bench" / "out"
# What an agent's data dir may hold at its top level; anything else is an orphan.
DATA_DIR_ENTRIES = {"samples", "staging", "trash", "quarantine", "cache", "index.sqlite3", "index.sqlite3-wal",
                    "index.sqlite3-shm", "agent.lock", "token", "model_registry"}  # fmt: skip


def all_captures(agent, timeout: float = 30) -> dict[str, dict]:
    """Every indexed capture of ``agent``, by id, paging through ``GET captures``."""
    out: dict[str, dict] = {}
    offset: int | None = 0
    while offset is not None:
        r = requests.get(agent.api(f"captures?limit=500&offset={offset}"), headers=agent.auth, timeout=timeout)
        assert r.status_code == 200, r.text
        page = r.json()
        out.update({c["id"]: c for c in page["items"]})
        offset = page["next_offset"]
    return out


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_data_dir(data_dir: Path, captures: dict[str, dict]) -> list[str]:
    """Problems on disk: a capture's file missing or not matching its recorded sha256/size, a sample dir
    nobody indexed, leftovers in staging or trash, an unexpected top-level entry. Empty when all is well."""
    problems = []
    for cid, rec in captures.items():
        for kind, ref in rec["files"].items():
            path = data_dir / ref["path"]
            if not path.is_file():
                problems.append(f"{cid}: {kind} file {ref['path']} missing")
            elif path.stat().st_size != ref["bytes"] or sha256_file(path) != ref["sha256"]:
                problems.append(f"{cid}: {kind} file {ref['path']} differs from its recorded sha256")
    on_disk = {p.name for p in (data_dir / "samples").iterdir()}
    problems += [f"orphan sample dir samples/{name}" for name in sorted(on_disk - set(captures))]
    for work in ("staging", "trash"):
        problems += [f"leftover {work}/{p.name}" for p in (data_dir / work).iterdir()]
    problems += [f"unexpected entry {p.name} in the data dir" for p in data_dir.iterdir()
                 if p.name not in DATA_DIR_ENTRIES]  # fmt: skip
    return problems


def wait_until(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.05) -> object:
    """Poll ``predicate`` until it returns something truthy; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout}s")
        time.sleep(interval)


def png_bytes(width: int = 160, height: int = 120, seed: int = 0) -> bytes:
    """A small random RGB PNG."""
    image = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    return cv2.imencode(".png", image)[1].tobytes()


def jpeg_bytes(width: int = 160, height: int = 120, seed: int = 0) -> bytes:
    """A small random JPEG."""
    image = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def mount_tmpfs(path: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` (e.g. ``8m``) on ``path``; the reason it failed, or None."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        run = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True, timeout=20)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run mount: {exc}"
    return None if run.returncode == 0 else f"mount -t tmpfs failed ({run.returncode}): {run.stderr.strip()}"


def remount_tmpfs(path: Path, size: str) -> None:
    """Resize a mounted tmpfs in place (its files stay)."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True, capture_output=True, timeout=20)


def umount(path: Path) -> None:
    """Unmount ``path`` (lazily, so a straggling process cannot make the test hang)."""
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=20)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` percentile (0-100) of ``values``, nearest rank; 0.0 for an empty list."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(np.ceil(q / 100.0 * len(ordered))) - 1))
    return ordered[rank]


def write_report(name: str, data: dict) -> Path:
    """Write ``data`` as bench/out/<name>.json (for the closing figures) and return the path."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
    return path


class Tally:
    """Bad inputs tried per endpoint, for the closing figures (printed and written to bench/out/)."""

    counts: dict[str, int] = {}

    @classmethod
    def add(cls, endpoint: str, n: int = 1) -> None:
        """Count ``n`` bad inputs sent to ``endpoint`` (``"METHOD /rule"``)."""
        cls.counts[endpoint] = cls.counts.get(endpoint, 0) + n


def raw_request(agent, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
                timeout: float = 15) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """Send ``path`` exactly as given (no dot-segment normalisation, unlike requests); ``(status, headers, body)``.

    Like a careful client, it sends the headers of a big body first and holds the body back if the server
    answers on the headers alone (a body over its limit), so that the answer is never lost to a reset.
    """
    body = body or b""
    fields = {"Host": f"127.0.0.1:{agent.port}", "Connection": "close", **(headers or {})}
    if body or method in ("POST", "PUT", "PATCH"):
        fields.setdefault("Content-Length", str(len(body)))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    chunks = []
    with socket.create_connection(("127.0.0.1", agent.port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1"))
        if body and (len(body) < 1 << 16 or not select.select([sock], [], [], 0.2)[0]):
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(body)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(1 << 16):
                chunks.append(chunk)
    response = http.client.HTTPResponse(_Replay(b"".join(chunks)))
    response.begin()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


class _Replay:
    """A received byte string posing as a socket, for http.client's response parser."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.data)


def assert_json_error(status: int, headers: dict[str, str], body: bytes, expected: int | tuple[int, ...],
                      what: object = "") -> dict:  # fmt: skip
    """The answer is ``expected`` with a ``{"error": {"code", "message"}}`` JSON body and no stack trace."""
    expected = (expected,) if isinstance(expected, int) else expected
    assert status in expected, (what, status, body[:300])
    assert headers.get("content-type", "").startswith("application/json"), (what, headers, body[:300])
    error = json.loads(body)["error"]
    assert isinstance(error["code"], str) and error["code"], (what, error)
    assert isinstance(error["message"], str) and error["message"], (what, error)
    assert b"Traceback" not in body and b'File "' not in body, (what, body[:300])
    return error
