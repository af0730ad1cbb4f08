"""Uploads, listing, relabel/delete, images, the MJPEG stream, and every bad input: 4xx JSON, nothing stored."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from tests.agent_app import AgentApp, multipart

MAX_UPLOAD = 2 * 1024 * 1024


@pytest.fixture
def agent(agent_app) -> AgentApp:
    return agent_app(max_upload_bytes=MAX_UPLOAD, max_image_pixels=4_000_000)


def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def _jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image)[1].tobytes()


def _image(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _stored(agent: AgentApp) -> tuple[int, int]:
    total = agent.client.get(agent.api("captures?limit=1"), headers=agent.auth).json["total"]
    return total, len(list((agent.data_dir / "samples").iterdir()))


def _png_claiming(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose header claims ``width`` x ``height`` (a decompression-bomb header)."""
    data = bytearray(_png(np.zeros((1, 1, 3), np.uint8)))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_upload_with_depth_list_relabel_delete(agent):
    client = agent.client
    image = _image()
    depth = np.random.default_rng(1).integers(0, 4000, (120, 160), dtype=np.uint16)
    files = {"image": ("a.png", _png(image), "image/png"), "depth": ("d.png", _png(depth), "image/png")}
    r = client.post(agent.api("captures"), data=multipart(files, label="gap"), headers=agent.auth)
    assert r.status_code == 201, r.text
    rec = r.json
    assert r.headers["Location"].endswith(rec["id"]) and rec["label"] == "gap" and rec["source"] == "upload"
    stored = client.get(agent.api(f"captures/{rec['id']}/image"), headers=agent.auth)
    assert np.array_equal(cv2.imdecode(np.frombuffer(stored.data, np.uint8), cv2.IMREAD_COLOR), image)
    stored = client.get(agent.api(f"captures/{rec['id']}/depth"), headers=agent.auth)
    assert np.array_equal(cv2.imdecode(np.frombuffer(stored.data, np.uint8), cv2.IMREAD_UNCHANGED), depth)
    thumb = client.get(agent.api(f"captures/{rec['id']}/thumbnail"), headers=agent.auth)
    assert thumb.headers["Content-Type"] == "image/jpeg" and thumb.data[:2] == b"\xff\xd8"

    files = {"image": ("b.jpg", _jpeg(_image(seed=2)), "image/jpeg")}
    review = client.post(agent.api("captures"), data=multipart(files), headers=agent.auth).json
    assert review["label"] is None and "depth" not in review["files"]
    assert client.get(agent.api(f"captures/{review['id']}/depth"), headers=agent.auth).status_code == 404
    queue = client.get(agent.api("captures?unlabelled=1"), headers=agent.auth).json
    assert review["id"] in [c["id"] for c in queue["items"]]

    def in_manifest(cid: str) -> bool:
        manifest = client.get(agent.api("dataset/manifest"), headers=agent.auth).json
        return cid in {s["id"] for s in manifest["samples"]}

    assert not in_manifest(review["id"])

    r = client.patch(agent.api(f"captures/{review['id']}"), json={"label": "porosity"}, headers=agent.auth)
    assert r.status_code == 200 and r.json["label"] == "porosity" and in_manifest(review["id"])
    listed = client.get(agent.api("captures?label=porosity"), headers=agent.auth).json
    assert [c["id"] for c in listed["items"]] == [review["id"]]
    page = client.get(agent.api("captures?limit=1&offset=0"), headers=agent.auth).json
    assert page["items"][0]["id"] == review["id"] and page["next_offset"] == 1  # newest first

    assert client.delete(agent.api(f"captures/{rec['id']}"), headers=agent.auth).status_code == 200
    assert client.get(agent.api(f"captures/{rec['id']}"), headers=agent.auth).status_code == 404
    assert client.delete(agent.api(f"captures/{rec['id']}"), headers=agent.auth).status_code == 404
    assert not (agent.data_dir / "samples" / rec["id"]).exists()
    assert not in_manifest(rec["id"])
    assert client.delete(agent.api(f"captures/{review['id']}")).status_code == 401


BAD_JSON = [
    ({"label": "welded-ok"}, 400, "unknown_label"),
    ({"label": "güt"}, 400, "unknown_label"),
    ({"label": 3}, 400, "unknown_label"),
    ({"label": "good", "colour": "red"}, 400, "unknown_field"),
    ({"label": "good", "meta": "x"}, 400, "bad_parameter"),
]


def test_bad_captures_are_refused_and_store_nothing(agent):
    client = agent.client
    before = _stored(agent)
    for body, status, code in BAD_JSON:
        r = client.post(agent.api("captures"), json=body, headers=agent.auth)
        assert (r.status_code, r.json["error"]["code"]) == (status, code), body
    r = client.post(agent.api("captures"), json={"label": "nope"}, headers=agent.auth)
    assert "good, porosity, spatter, gap, undercut" in r.json["error"]["message"]
    raw = [
        (b'{"label": "good"', "application/json", 400, "malformed_json"),
        (b"[1, 2]", "application/json", 400, "malformed_json"),
        (b"\xff\xfe", "application/json", 400, "malformed_json"),
        (b"label=good", "text/plain", 415, "unsupported_media_type"),
    ]
    for body, ctype, status, code in raw:
        r = client.post(agent.api("captures"), data=body, content_type=ctype, headers=agent.auth)
        assert (r.status_code, r.json["error"]["code"]) == (status, code), body

    png, jpeg = _png(_image()), _jpeg(_image())
    depth8 = _png(np.zeros((120, 160), np.uint8))
    depth_small = _png(np.zeros((10, 10), np.uint16))
    uploads = [
        ({"image": ("x.txt", b"hello, not an image")}, {}, 400, "unsupported_image"),
        ({"image": ("x.png", png[: len(png) // 2])}, {}, 400, "bad_image"),
        ({"image": ("x.jpg", jpeg[: len(jpeg) - 200])}, {}, 400, "bad_image"),
        ({"image": ("x.png", b"")}, {}, 400, "unsupported_image"),
        ({"image": ("x.png", _png_claiming(50_000, 50_000))}, {}, 413, "image_too_large"),
        ({"image": ("x.png", png), "depth": ("d.png", depth8)}, {}, 400, "bad_depth"),
        ({"image": ("x.png", png), "depth": ("d.png", depth_small)}, {}, 400, "bad_depth"),
        ({"image": ("x.png", png)}, {"label": "../../etc"}, 400, "unknown_label"),
        ({"image": ("x.png", png)}, {"meta": "{not json"}, 400, "bad_parameter"),
        ({"image": ("x.png", png)}, {"path": "x"}, 400, "unknown_field"),
        ({"picture": ("x.png", png)}, {}, 400, "unknown_field"),
        ({"depth": ("d.png", depth_small)}, {}, 400, "missing_field"),
    ]
    for files, fields, status, code in uploads:
        r = client.post(agent.api("captures"), data=multipart(files, **fields), headers=agent.auth)
        assert (r.status_code, r.json["error"]["code"]) == (status, code), (list(files), fields, r.text)

    big = {"image": ("big.png", b"\x89PNG" + b"\0" * (MAX_UPLOAD + 1000))}
    r = client.post(agent.api("captures"), data=multipart(big), headers=agent.auth)
    assert r.status_code == 413 and r.json["error"]["code"] == "payload_too_large"
    r = client.post(agent.api("captures"), data=multipart({"image": ("x.png", png)}))
    assert r.status_code == 401
    assert _stored(agent) == before
    assert not any((agent.data_dir / "staging").iterdir())


def test_bad_ids_and_parameters(agent):
    client = agent.client
    for path in ("captures/nope", "captures/a..b", "captures/..", "captures/%2e%2e%2findex.sqlite3",
                 "captures/x%2F..%2F..%2Ftoken", "captures/nope/image", "captures/nope/thumbnail"):  # fmt: skip
        r = client.get(agent.api(path), headers=agent.auth)
        assert r.status_code == 404 and r.json["error"]["code"] == "not_found", path
    r = client.patch(agent.api("captures/a..b"), json={"label": "good"}, headers=agent.auth)
    assert r.status_code == 404
    for query in ("limit=0", "limit=501", "limit=ten", "offset=-1", "offset=99999999999999999999999", "label=nah"):
        r = client.get(agent.api(f"captures?{query}"), headers=agent.auth)
        assert r.status_code == 400 and r.json["error"]["code"] in ("bad_parameter", "unknown_label"), query
    r = client.patch(agent.api("captures/nope"), json={}, headers=agent.auth)
    assert r.status_code == 400 and r.json["error"]["code"] == "missing_field"
    r = client.post(agent.api("camera/scene"), json={"label": "crack"}, headers=agent.auth)
    assert r.status_code == 400
    r = client.delete(agent.api("dataset/stats"), headers=agent.auth)
    assert r.status_code == 405 and r.json["error"]["code"] == "method_not_allowed"


def _read_frames(response, count: int) -> list[np.ndarray]:
    buf, frames = b"", []
    for chunk in response.iter_encoded():
        buf += chunk
        while (start := buf.find(b"\xff\xd8")) >= 0 and (end := buf.find(b"\xff\xd9", start)) >= 0:
            frames.append(cv2.imdecode(np.frombuffer(buf[start : end + 2], np.uint8), cv2.IMREAD_COLOR))
            buf = buf[end + 2 :]
            if len(frames) == count:
                return frames
    return frames


def test_mjpeg_stream_shares_the_camera_and_frees_slots(agent):
    client = agent.client
    assert client.get(agent.api("stream.mjpg")).status_code == 401
    for _ in range(6):  # more than max_streams (4): closed viewers must give their slot back
        with client.get(agent.api("stream.mjpg"), headers=agent.auth, buffered=False) as r:
            assert r.status_code == 200 and r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            frames = _read_frames(r, 2)
            assert len(frames) == 2 and all(f is not None and f.shape == (480, 640, 3) for f in frames)
    viewers = [client.get(agent.api("stream.mjpg"), headers=agent.auth, buffered=False) for _ in range(4)]
    try:
        r = client.get(agent.api("stream.mjpg"), headers=agent.auth)
        assert r.status_code == 503 and r.json["error"]["code"] == "too_many_streams"
        assert client.get(agent.api("status"), headers=agent.auth).status_code == 200  # the API still answers
    finally:
        for viewer in viewers:
            viewer.close()


def test_free_space_reserve_refuses_with_507(agent_app):
    agent = agent_app(free_space_reserve_bytes=2**60)
    r = agent.client.post(agent.api("captures"), json={"label": "good"}, headers=agent.auth)
    assert r.status_code == 507 and r.json["error"]["code"] == "insufficient_storage"
    assert "free_space_reserve_bytes" in r.json["error"]["message"]
    assert _stored(agent) == (0, 0)
    assert agent.client.get("/healthz").status_code == 200
