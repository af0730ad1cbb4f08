"""Upload limits at the server: bodies refused from their headers, before a byte of them is read or spooled.

A real agent process with the default 32 MiB upload limit and its temp dir (``TMPDIR``, where waitress
spools request bodies) pointed at the test's own folder. Clients are raw sockets that send the headers
alone and read the answer with a timeout, so an answer that only comes after the body shows as a timeout.
The temp space in use is read from the agent's open files (``/proc/<pid>/fd``: spooled bodies are
unlinked temp files) plus what the folder holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from rdk_agent.config import AgentConfig, ConfigError
from rdk_agent.launcher import AgentProcess
from tests.reliability.support import png_bytes

pytestmark = pytest.mark.reliability

MiB = 1024 * 1024
LIMIT = 32 * MiB  # the agent's default max_upload_bytes
TOKEN = "upload-limits-token-0b7e"
MULTIPART = "multipart/form-data; boundary=xyz"
ANSWER_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def agent(tmp_path_factory) -> Iterator[AgentProcess]:
    """One agent with default limits whose temp files go to its own folder (``agent.tmp_dir``)."""
    root = tmp_path_factory.mktemp("upload-limits")
    tmp_dir = root / "tmp"
    tmp_dir.mkdir()
    proc = AgentProcess(root / "data", root / "models", token=TOKEN, env={"TMPDIR": str(tmp_dir)})
    proc.tmp_dir = tmp_dir
    yield proc.start()
    proc.stop()


def temp_bytes(pid: int, folder: Path) -> int:
    """Disk space held by files under ``folder``: the process's open ones (unlinked included) and the rest."""
    seen: dict[tuple[int, int], int] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(folder)):
                st = os.stat(f"/proc/{pid}/fd/{fd}")
                seen[(st.st_dev, st.st_ino)] = st.st_blocks * 512
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            st = path.stat()
            seen[(st.st_dev, st.st_ino)] = st.st_blocks * 512
    return sum(seen.values())


def send_head(agent: AgentProcess, path: str, headers: dict[str, str], method: str = "POST") -> socket.socket:
    """Open a connection and send the request line and headers only."""
    sock = socket.create_connection(("127.0.0.1", agent.port), timeout=ANSWER_TIMEOUT)
    fields = {"Host": f"127.0.0.1:{agent.port}", **headers}
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    sock.sendall(head.encode("latin-1"))
    return sock


def read_answer(sock: socket.socket, timeout: float = ANSWER_TIMEOUT) -> tuple[int, dict[str, str], bytes]:
    """One response (an interim ``100 Continue`` counts as one): ``(status, headers, body)``.

    Raises ``socket.timeout`` when nothing complete comes within ``timeout``: the server is waiting for the body.
    """
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed without an answer after {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", 0)) if status >= 200 else 0
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body[:length]


def refused(status: int, headers: dict[str, str], body: bytes, expected: tuple[int, ...]) -> dict:
    """The answer is one of ``expected`` with the API's JSON error; returns the error."""
    assert status in expected, (status, body[:300])
    assert headers["content-type"].startswith("application/json"), headers
    error = json.loads(body)["error"]
    assert error["code"] and error["message"], error
    return error


def auth_header(token: str = TOKEN) -> dict[str, str]:
    """The Bearer header."""
    return {"Authorization": f"Bearer {token}"}


UNAUTHORISED = {
    "no token": {},
    "wrong token": auth_header("not-the-token"),
    "wrong cookie": {"Cookie": "rdk_session=0123abcd"},
    "not bearer": {"Authorization": f"Basic {TOKEN}"},
}


@pytest.mark.parametrize("expect_continue", [False, True], ids=["plain", "expect-100"])
@pytest.mark.parametrize("who", sorted(UNAUTHORISED))
def test_unauthenticated_upload_announcing_100_mib_is_refused_from_its_headers(agent, who, expect_continue):
    headers = {**UNAUTHORISED[who], "Content-Type": MULTIPART, "Content-Length": str(100 * MiB)}
    if expect_continue:
        headers["Expect"] = "100-continue"
    with send_head(agent, "/api/v1/captures", headers) as sock:
        error = refused(*read_answer(sock), (401, 413))
    assert "token" in error["message"] or "max_upload_bytes" in error["message"], error


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": MULTIPART, "Content-Length": str(1 * MiB)},  # under the limit, still no token
        {"Content-Type": MULTIPART, "Transfer-Encoding": "chunked"},  # no length announced
        {"Content-Type": "application/json", "Content-Length": str(LIMIT)},
    ],
    ids=["1-MiB", "chunked", "json-at-limit"],
)
def test_unauthenticated_bodies_are_refused_with_401_from_their_headers(agent, headers):
    with send_head(agent, "/api/v1/inspect", headers) as sock:
        error = refused(*read_answer(sock), (401,))
    assert error["code"] == "unauthorized"


@pytest.mark.parametrize("expect_continue", [False, True], ids=["plain", "expect-100"])
@pytest.mark.parametrize("route", ["/api/v1/captures", "/api/v1/inspect", "/api/v1/no-such-route"])
def test_authenticated_over_size_upload_gets_413_from_its_headers(agent, route, expect_continue):
    headers = {**auth_header(), "Content-Type": MULTIPART, "Content-Length": str(LIMIT + 1)}
    if expect_continue:
        headers["Expect"] = "100-continue"
    with send_head(agent, route, headers) as sock:
        error = refused(*read_answer(sock), (413,))
    assert error["code"] == "payload_too_large" and f"{LIMIT} bytes" in error["message"], error


def test_public_session_route_takes_only_a_small_body(agent):
    with send_head(agent, "/api/v1/session", {"Content-Type": "application/json", "Content-Length": str(MiB)}) as s:
        refused(*read_answer(s), (413,))
    r = requests.post(agent.api("session"), json={"token": TOKEN}, timeout=10)
    assert r.ok and "rdk_session" in r.cookies
    assert requests.post(agent.api("session"), json={"token": "wrong"}, timeout=10).status_code == 401


def test_authenticated_upload_with_expect_continue_is_invited_and_stored(agent):
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="label"\r\n\r\ngood\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {**auth_header(), "Content-Type": f"multipart/form-data; boundary={boundary}",
               "Content-Length": str(len(body)), "Expect": "100-continue"}  # fmt: skip
    with send_head(agent, "/api/v1/captures", headers) as sock:
        assert read_answer(sock)[0] == 100
        sock.sendall(body)
        status, _, answer = read_answer(sock)
    assert status == 201, answer[:300]
    assert json.loads(answer)["label"] == "good"


def test_cookie_session_may_upload(agent):
    session = requests.Session()
    assert session.post(agent.api("session"), json={"token": TOKEN}, timeout=10).ok
    r = session.post(agent.api("captures"), files={"image": ("a.png", png_bytes())}, data={"label": "gap"}, timeout=30)
    assert r.status_code == 201, r.text


def _attack(agent: AgentProcess, headers: dict[str, str], push: int, answers: list, lock: threading.Lock) -> None:
    """Announce an over-size body, read the answer, then push up to ``push`` bytes of body anyway."""
    sock = send_head(agent, "/api/v1/captures", headers)
    try:
        try:
            answer: object = read_answer(sock, timeout=10)[0]
        except OSError as exc:
            answer = repr(exc)
        sock.settimeout(2)
        chunk = b"\x00" * 65536
        with contextlib.suppress(OSError):
            for _ in range(push // len(chunk)):
                sock.sendall(chunk)
    finally:
        sock.close()
        with lock:
            answers.append(answer)


def test_64_concurrent_over_size_uploads_spool_nothing_near_their_size(agent):
    push = 4 * MiB  # what each client tries to send of its body
    attackers = [auth_header() if i % 2 else {} for i in range(64)]
    answers: list = []
    lock = threading.Lock()
    peak = 0
    threads = []
    for auth in attackers:
        size = LIMIT + 1 if auth else 100 * MiB
        headers = {**auth, "Content-Type": MULTIPART, "Content-Length": str(size)}
        threads.append(threading.Thread(target=_attack, args=(agent, headers, push, answers, lock), daemon=True))
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, temp_bytes(agent.proc.pid, agent.tmp_dir))
        time.sleep(0.02)
    peak = max(peak, temp_bytes(agent.proc.pid, agent.tmp_dir))
    print(f"64 over-size uploads: peak temp space {peak} bytes; answers {sorted(map(str, answers))[:3]}...")
    assert all(answer in (401, 413) for answer in answers) and len(answers) == len(attackers), answers
    assert peak < MiB, f"{peak / MiB:.1f} MiB spooled for refused uploads"
    assert requests.get(agent.api("status"), headers=auth_header(), timeout=10).ok


def _waits_for_body(agent: AgentProcess, headers: dict[str, str]) -> bool:
    """True when the server accepts the headers and waits for the body; False when it answers 503 at once."""
    with send_head(agent, "/api/v1/captures", headers) as sock:
        try:
            status, answer_headers, body = read_answer(sock, timeout=0.5)
        except TimeoutError:
            return True
    refused(status, answer_headers, body, (503,))
    return False


def test_bodies_buffered_at_once_are_bounded_and_released_on_disconnect(agent_process, tmp_path):
    """Room for two 1 MiB bodies: a third is refused from its headers (503), and a client that drops frees room."""
    tmp_dir = tmp_path / "tmp"
    tmp_dir.mkdir()
    small = agent_process(token=TOKEN, env={"TMPDIR": str(tmp_dir)},
                          config={"max_upload_bytes": MiB, "max_buffered_bytes": 2 * MiB})  # fmt: skip
    headers = {**auth_header(), "Content-Type": MULTIPART, "Content-Length": str(MiB)}
    first, second = send_head(small, "/api/v1/captures", headers), send_head(small, "/api/v1/captures", headers)
    try:
        for sock in (first, second):  # half of each body: both are being received
            sock.sendall(b"\x00" * (MiB // 2))
        time.sleep(0.3)
        assert temp_bytes(small.proc.pid, tmp_dir) <= 2 * MiB
        with send_head(small, "/api/v1/captures", headers) as third:
            status, answer_headers, body = read_answer(third)
        error = refused(status, answer_headers, body, (503,))
        assert "max_buffered_bytes" in error["message"] and int(answer_headers["retry-after"]) >= 1
        first.close()  # a client that gives up half-way frees its share
        deadline = time.monotonic() + 5
        while not _waits_for_body(small, headers):
            assert time.monotonic() < deadline, "the dropped upload's share was not released"
            time.sleep(0.1)
    finally:
        first.close()
        second.close()


def test_buffer_budget_below_the_upload_limit_is_a_config_error():
    with pytest.raises(ConfigError, match="max_buffered_bytes"):
        AgentConfig.build(env={"RDK_AGENT_MAX_UPLOAD_BYTES": str(64 * MiB), "RDK_AGENT_MAX_BUFFERED_BYTES": str(MiB)})
    config = AgentConfig.build(env={"RDK_AGENT_MAX_BUFFERED_BYTES": str(256 * MiB), "RDK_AGENT_MAX_META_BYTES": "100"})
    assert (config.max_buffered_bytes, config.max_meta_bytes) == (256 * MiB, 100)
