"""Bad input to every endpoint that reads a body or a query: a clear 4xx JSON error, nothing stored, no trace.

tests/agent/test_captures.py checks the main refusals of POST captures one by one; this module sends the
whole catalogue to every body-taking route the URL map has (JSON and multipart), plus over-size bodies
(both sides of the body limit, and a Content-Length that lies), decompression bombs that are real small
files, deep JSON nesting, unicode labels and out-of-range pagination.
"""

from __future__ import annotations

import json
import struct
import zlib

import cv2
import numpy as np
import pytest
import requests

from tests.reliability.conftest import MAX_PIXELS, MAX_UPLOAD
from tests.reliability.support import Tally, all_captures, assert_json_error, jpeg_bytes, png_bytes, raw_request

pytestmark = pytest.mark.reliability

JSON_ROUTES = ["/api/v1/session", "/api/v1/captures", "/api/v1/captures/{id}", "/api/v1/camera/scene",
               "/api/v1/inspect", "/api/v1/model/rollback"]  # fmt: skip
UPLOAD_ROUTES = ["/api/v1/captures", "/api/v1/inspect"]
BAD_LABELS = ["nope", "GOOD", " good", "good ", "pörösity", "裂纹", "good\u0000", "\u202egood", "💥", "../../etc",
              "a" * 5000, 5, 1.5, True, ["good"], {"name": "good"}]  # fmt: skip
MALFORMED = [b'{"label": "good"', b"[1, 2]", b'"good"', b"null", b"\xff\xfe\x00", b"{'label': 'good'}",
             b'{"label": "good"}{"label": "gap"}', b"[" * 50_000, b'{"a":' * 20_000, b"", b"\x00" * 64]  # fmt: skip


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG whose header claims ``width`` x ``height`` and whose data is a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A JPEG whose SOF0 frame header claims ``width`` x ``height``, ending with EOI."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + sof + b"\x00" * 32 + b"\xff\xd9"


def bad_images() -> list[tuple[str, bytes]]:
    """Uploads that must be refused: not images, cut short, corrupt, or decompression bombs."""
    png, jpeg = png_bytes(), jpeg_bytes()
    corrupt = bytearray(png)
    corrupt[60:120] = b"\xaa" * 60  # inside IDAT: same length, still ends with IEND
    real_bomb = cv2.imencode(".png", np.zeros((2000, 2000, 3), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])[1]
    assert len(real_bomb) < MAX_UPLOAD and MAX_PIXELS < 2000 * 2000  # small file, too many pixels
    gif = b"GIF89a" + b"\x01\x00\x01\x00" + b"\x00" * 20
    bmp = cv2.imencode(".bmp", np.zeros((4, 4, 3), np.uint8))[1].tobytes()
    return [
        ("text", b"hello, not an image"), ("empty", b""), ("gif", gif), ("bmp", bmp),
        ("truncated png", png[: len(png) // 2]), ("truncated jpeg", jpeg[:-300]), ("png header only", png[:20]),
        ("corrupt png data", bytes(corrupt)), ("zero-size png", png_claiming(0, 0)),
        ("png bomb header 50000x50000", png_claiming(50_000, 50_000)),
        ("jpeg bomb header", jpeg_claiming(60_000, 60_000)),
        ("real png bomb 2000x2000", real_bomb.tobytes()), ("html", b"<html><script>alert(1)</script></html>"),
    ]  # fmt: skip


def _snapshot(agent) -> tuple[dict, set[str]]:
    return all_captures(agent), {p.name for p in (agent.data_dir / "samples").iterdir()}


@pytest.fixture(scope="module")
def sample_id(small_agent) -> str:
    r = requests.post(small_agent.api("captures"), files={"image": ("a.png", png_bytes())}, data={"label": "gap"},
                      headers=small_agent.auth, timeout=30)  # fmt: skip
    assert r.status_code == 201
    return r.json()["id"]


def _send(agent, method: str, path: str, body: bytes, content_type: str = "application/json"):
    headers = {**agent.auth, "Content-Type": content_type}
    return raw_request(agent, method, path, headers=headers, body=body)


def test_malformed_and_unknown_json_everywhere(small_agent, sample_id):
    before = _snapshot(small_agent)
    for route in JSON_ROUTES:
        path = route.format(id=sample_id)
        method = "PATCH" if "{id}" in route else "POST"
        bodies = [*MALFORMED, b'{"label": "good", "colour": "red"}', b'{"token": "x", "admin": true}']
        bodies += [json.dumps({"label": label}).encode() for label in BAD_LABELS]
        for body in bodies:
            if route == "/api/v1/inspect" and body == b"":
                continue  # an empty body asks for the current camera frame
            assert_json_error(*_send(small_agent, method, path, body), (400, 401, 404, 409, 415), (path, body[:40]))
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
            assert_json_error(*_send(small_agent, method, path, b"label=good", ctype), (400, 401, 409, 415), path)
        Tally.add(f"{method} {route.replace('{id}', '<sample_id>')}", len(bodies) + 3)
    assert _snapshot(small_agent) == before
    assert not any((small_agent.data_dir / "staging").iterdir())


def test_labels_outside_the_schema_name_the_known_ones(small_agent, sample_id):
    for label in BAD_LABELS:
        for method, path in (("POST", "/api/v1/captures"), ("PATCH", f"/api/v1/captures/{sample_id}")):
            body = json.dumps({"label": label}).encode()
            error = assert_json_error(*_send(small_agent, method, path, body), 400, label)
            assert error["code"] == "unknown_label" and "good, porosity, spatter, gap, undercut" in error["message"]
        r = requests.get(small_agent.api("captures"), params={"label": str(label)}, headers=small_agent.auth)
        assert_json_error(r.status_code, r.headers, r.content, 400, label)
    Tally.add("GET /api/v1/captures", len(BAD_LABELS))
    assert requests.get(small_agent.api(f"captures/{sample_id}"), headers=small_agent.auth).json()["label"] == "gap"


def test_bad_images_and_bombs_are_refused_on_every_upload_route(small_agent):
    before = _snapshot(small_agent)
    images = bad_images()
    for route in UPLOAD_ROUTES:
        for name, data in images:
            for field in ("image", "depth"):
                files = {"image": ("a.png", png_bytes())} if field == "depth" else {}
                files[field] = (f"{name}.png", data)
                r = requests.post(f"{small_agent.url}{route}", files=files, headers=small_agent.auth, timeout=30)
                error = assert_json_error(r.status_code, r.headers, r.content, (400, 413), (route, name, field))
                if "bomb" in name:
                    assert r.status_code == 413 and error["code"] == "image_too_large", (route, name, field)
        for files, data in (({"picture": ("a.png", png_bytes())}, {}), ({}, {"label": "good"}),
                            ({"image": ("a.png", png_bytes())}, {"meta": "[1"}),
                            ({"image": ("a.png", png_bytes())}, {"label": "good", "extra": "1"})):  # fmt: skip
            r = requests.post(f"{small_agent.url}{route}", files=files or None, data=data, headers=small_agent.auth,
                              timeout=30)  # fmt: skip
            assert_json_error(r.status_code, r.headers, r.content, (400, 415), (route, files, data))
        Tally.add(f"POST {route}", 2 * len(images) + 4)
    assert _snapshot(small_agent) == before


def test_over_size_bodies_get_413_json_on_both_sides_of_the_limit(small_agent, sample_id):
    before = _snapshot(small_agent)
    for route in JSON_ROUTES:
        path = route.format(id=sample_id)
        method = "PATCH" if "{id}" in route else "POST"
        for size in (MAX_UPLOAD + 1, MAX_UPLOAD + 4096, 3 * MAX_UPLOAD, 6 * MAX_UPLOAD):
            body = b'{"label": "' + b"x" * (size - 13) + b'"}'
            error = assert_json_error(*_send(small_agent, method, path, body), 413, (path, size))
            assert error["code"] == "payload_too_large" and "max_upload_bytes" in error["message"], error
        # a client that claims 10 GB: refused on the header, before any byte of the body is read
        status, headers, data = raw_request(small_agent, method, path, body=b"{}",
                                            headers={**small_agent.auth, "Content-Type": "application/json",
                                                     "Content-Length": str(10 * 2**30)})  # fmt: skip
        assert_json_error(status, headers, data, 413, (path, "10 GB claimed"))
        Tally.add(f"{method} {route.replace('{id}', '<sample_id>')}", 5)
    big = {"image": ("big.png", png_bytes() + b"\x00" * (2 * MAX_UPLOAD))}
    r = requests.post(small_agent.api("captures"), files=big, data={"label": "good"}, headers=small_agent.auth)
    assert_json_error(r.status_code, r.headers, r.content, 413, "multipart over the limit")
    assert _snapshot(small_agent) == before
    assert requests.get(small_agent.api("status"), headers=small_agent.auth, timeout=10).ok


PAGINATION = ["limit=0", "limit=-1", "limit=501", "limit=1e3", "limit=1.5", "limit=%00", "limit=0x10", "limit=",
              "offset=-1", "offset=1e309", "offset=99999999999999999999999999999", f"offset={2**31 + 1}",
              "offset=%E2%88%9E", "offset=2**31", "limit=1,2"]  # fmt: skip


def test_huge_and_malformed_pagination(small_agent):
    for query in PAGINATION:
        status, headers, body = raw_request(small_agent, "GET", f"/api/v1/captures?{query}", headers=small_agent.auth)
        if query in ("limit=",):
            assert status == 200, query  # empty means the default
            continue
        assert_json_error(status, headers, body, 400, query)
    r = requests.get(small_agent.api("captures"), params={"offset": 2**31, "limit": 500}, headers=small_agent.auth)
    assert r.status_code == 200 and r.json()["items"] == [] and r.json()["next_offset"] is None
    for query in ("format=zip", "format=../../etc/passwd", "format=" + "x" * 5000, "format=tar%00"):
        status, headers, body = raw_request(small_agent, "GET", f"/api/v1/dataset/export?{query}",
                                            headers=small_agent.auth)  # fmt: skip
        assert_json_error(status, headers, body, 400, query)
    Tally.add("GET /api/v1/captures", len(PAGINATION) + 1)
    Tally.add("GET /api/v1/dataset/export", 4)
