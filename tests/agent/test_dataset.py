"""Capture → stats → manifest → export (tar, tar.gz) → files by hash, in process."""

from __future__ import annotations

import hashlib

from shared_schema import DatasetManifest
from tests.agent_app import AgentApp
from tests.helpers.archive import verify_archive

LABELS = ("good", "porosity", "spatter")


def _capture(agent: AgentApp, label: str) -> dict:
    assert agent.client.post(agent.api("camera/scene"), json={"label": label}, headers=agent.auth).status_code == 200
    r = agent.client.post(agent.api("captures"), json={"label": label}, headers=agent.auth)
    assert r.status_code == 201, r.text
    return r.json


def test_thirty_captures_export_as_matching_tar_and_tar_gz(agent_app):
    agent = agent_app(token="T")
    client = agent.client
    records = [_capture(agent, label) for label in LABELS for _ in range(10)]
    assert len({r["id"] for r in records}) == 30
    assert [r["id"] for r in records] == sorted(r["id"] for r in records)  # ids sort by capture time
    assert all(rec["meta"]["camera"]["label"] == rec["label"] for rec in records)  # the scene we asked for

    stats = client.get(agent.api("dataset/stats"), headers=agent.auth).json
    counts = {item["name"]: item["count"] for item in stats["labels"]}
    assert counts == {"good": 10, "porosity": 10, "spatter": 10, "gap": 0, "undercut": 0}
    assert stats["labels"][0]["missing"] == 90 and stats["target_per_class"] == 100
    assert stats["total_bytes"] == sum(f["bytes"] for r in records for f in r["files"].values())

    manifest = DatasetManifest.from_dict(client.get(agent.api("dataset/manifest"), headers=agent.auth).json)
    assert {s.id for s in manifest.samples} == {r["id"] for r in records}
    assert all(s.depth is not None and s.rgb.path == f"samples/{s.id}/rgb.png" for s in manifest.samples)

    assert client.get(agent.api("dataset/export")).status_code == 401
    r = client.get(agent.api("dataset/export?format=tar"), headers=agent.auth)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(r.data)
    exported = verify_archive(r.data, "r:")
    assert {s.id for s in exported.samples} == {s.id for s in manifest.samples}
    assert exported.dataset_id == manifest.dataset_id == r.headers["X-Dataset-Id"]

    r = client.get(agent.api("dataset/export?format=tar.gz"), headers=agent.auth)
    assert r.status_code == 200 and r.data[:2] == b"\x1f\x8b"
    assert len(verify_archive(r.data, "r:gz").samples) == 30

    r = client.get(agent.api("dataset/export?format=zip"), headers=agent.auth)
    assert r.status_code == 400 and r.json["error"]["code"] == "bad_parameter"


def test_files_by_hash_etag_range_and_export_during_delete(agent_app):
    agent = agent_app()
    client = agent.client
    records = [_capture(agent, label) for label in ("gap", "undercut", "good")]
    rgb = records[0]["files"]["rgb"]
    url = agent.api(f"dataset/files/{rgb['sha256']}")
    assert client.get(url).status_code == 401

    full = client.get(url, headers=agent.auth)
    assert full.status_code == 200 and hashlib.sha256(full.data).hexdigest() == rgb["sha256"]
    assert full.headers["ETag"] == f'"{rgb["sha256"]}"' and full.headers["Accept-Ranges"] == "bytes"
    r = client.get(url, headers={**agent.auth, "If-None-Match": full.headers["ETag"]})
    assert r.status_code == 304 and not r.data
    r = client.get(url, headers={**agent.auth, "Range": "bytes=100-1099"})
    assert r.status_code == 206 and r.data == full.data[100:1100]
    assert r.headers["Content-Range"] == f"bytes 100-1099/{rgb['bytes']}"
    r = client.get(url, headers={**agent.auth, "Range": f"bytes={rgb['bytes'] - 10}-"})
    assert r.status_code == 206 and r.data == full.data[-10:]
    r = client.get(url, headers={**agent.auth, "Range": f"bytes={rgb['bytes'] + 5}-"})
    assert r.status_code == 416
    depth = records[0]["files"]["depth"]
    assert client.get(agent.api(f"dataset/files/{depth['sha256']}"), headers=agent.auth).data[:4] == b"\x89PNG"
    assert client.get(agent.api("dataset/files/" + "0" * 64), headers=agent.auth).status_code == 404
    for bad in ("XYZ", "A" * 64, "..%2f..%2fetc%2fpasswd"):
        r = client.get(agent.api(f"dataset/files/{bad}"), headers=agent.auth)
        assert r.status_code in (400, 404) and r.json["error"]["code"] in ("bad_parameter", "not_found")

    # A sample deleted while an export streams is still sent: the snapshot stays consistent.
    with client.get(agent.api("dataset/export"), headers=agent.auth, buffered=False) as r:
        chunks = r.iter_encoded()
        head = next(chunks)
        assert client.delete(agent.api(f"captures/{records[1]['id']}"), headers=agent.auth).status_code == 200
        body = head + b"".join(chunks)
    assert len(verify_archive(body).samples) == 3
    after = client.get(agent.api("dataset/manifest"), headers=agent.auth).json
    assert len(after["samples"]) == 2
    assert not any((agent.data_dir / "trash").iterdir())
    assert not (agent.data_dir / "samples" / records[1]["id"]).exists()
