"""Capture → stats → manifest → export (tar, tar.gz) → files by hash, against a real agent process."""

from __future__ import annotations

import hashlib

import requests

from shared_schema import DatasetManifest
from tests.helpers.archive import verify_archive

LABELS = ("good", "porosity", "spatter")


def _capture(agent, label: str) -> dict:
    assert requests.post(agent.api("camera/scene"), json={"label": label}, headers=agent.auth, timeout=10).ok
    r = requests.post(agent.api("captures"), json={"label": label}, headers=agent.auth, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def test_thirty_captures_export_as_matching_tar_and_tar_gz(agent_process):
    agent = agent_process(token="T")
    records = [_capture(agent, label) for label in LABELS for _ in range(10)]
    assert len({r["id"] for r in records}) == 30
    assert [r["id"] for r in records] == sorted(r["id"] for r in records)  # ids sort by capture time
    assert all(rec["meta"]["camera"]["label"] == rec["label"] for rec in records)  # the scene we asked for

    stats = requests.get(agent.api("dataset/stats"), headers=agent.auth, timeout=10).json()
    counts = {item["name"]: item["count"] for item in stats["labels"]}
    assert counts == {"good": 10, "porosity": 10, "spatter": 10, "gap": 0, "undercut": 0}
    assert stats["labels"][0]["missing"] == 90 and stats["target_per_class"] == 100
    assert stats["total_bytes"] == sum(f["bytes"] for r in records for f in r["files"].values())

    manifest = DatasetManifest.from_dict(requests.get(agent.api("dataset/manifest"), headers=agent.auth).json())
    assert {s.id for s in manifest.samples} == {r["id"] for r in records}
    assert all(s.depth is not None and s.rgb.path == f"samples/{s.id}/rgb.png" for s in manifest.samples)

    assert requests.get(agent.api("dataset/export"), timeout=10).status_code == 401
    r = requests.get(agent.api("dataset/export?format=tar"), headers=agent.auth, timeout=60)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(r.content)
    exported = verify_archive(r.content, "r:")
    assert {s.id for s in exported.samples} == {s.id for s in manifest.samples}
    assert exported.dataset_id == manifest.dataset_id == r.headers["X-Dataset-Id"]

    r = requests.get(agent.api("dataset/export?format=tar.gz"), headers=agent.auth, timeout=60)
    assert r.status_code == 200 and r.content[:2] == b"\x1f\x8b"
    assert len(verify_archive(r.content, "r:gz").samples) == 30

    r = requests.get(agent.api("dataset/export?format=zip"), headers=agent.auth, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_parameter"


def test_files_by_hash_etag_range_and_export_during_delete(agent_process):
    agent = agent_process()
    records = [_capture(agent, label) for label in ("gap", "undercut", "good")]
    rgb = records[0]["files"]["rgb"]
    url = agent.api(f"dataset/files/{rgb['sha256']}")
    assert requests.get(url, timeout=10).status_code == 401

    full = requests.get(url, headers=agent.auth, timeout=10)
    assert full.status_code == 200 and hashlib.sha256(full.content).hexdigest() == rgb["sha256"]
    assert full.headers["ETag"] == f'"{rgb["sha256"]}"' and full.headers["Accept-Ranges"] == "bytes"
    r = requests.get(url, headers={**agent.auth, "If-None-Match": full.headers["ETag"]}, timeout=10)
    assert r.status_code == 304 and not r.content
    r = requests.get(url, headers={**agent.auth, "Range": "bytes=100-1099"}, timeout=10)
    assert r.status_code == 206 and r.content == full.content[100:1100]
    assert r.headers["Content-Range"] == f"bytes 100-1099/{rgb['bytes']}"
    r = requests.get(url, headers={**agent.auth, "Range": f"bytes={rgb['bytes'] - 10}-"}, timeout=10)
    assert r.status_code == 206 and r.content == full.content[-10:]
    r = requests.get(url, headers={**agent.auth, "Range": f"bytes={rgb['bytes'] + 5}-"}, timeout=10)
    assert r.status_code == 416
    depth = records[0]["files"]["depth"]
    assert requests.get(agent.api(f"dataset/files/{depth['sha256']}"), headers=agent.auth).content[:4] == b"\x89PNG"
    assert requests.get(agent.api("dataset/files/" + "0" * 64), headers=agent.auth).status_code == 404
    for bad in ("XYZ", "A" * 64, "..%2f..%2fetc%2fpasswd"):
        r = requests.get(agent.api(f"dataset/files/{bad}"), headers=agent.auth, timeout=10)
        assert r.status_code in (400, 404) and r.json()["error"]["code"] in ("bad_parameter", "not_found")

    # A sample deleted while an export streams is still sent: the snapshot stays consistent.
    with requests.get(agent.api("dataset/export"), headers=agent.auth, stream=True, timeout=30) as r:
        chunks = r.iter_content(chunk_size=4096)
        head = next(chunks)
        assert requests.delete(agent.api(f"captures/{records[1]['id']}"), headers=agent.auth).status_code == 200
        body = head + b"".join(chunks)
    assert len(verify_archive(body).samples) == 3
    after = requests.get(agent.api("dataset/manifest"), headers=agent.auth).json()
    assert len(after["samples"]) == 2
    assert not any((agent.data_dir / "trash").iterdir())
    assert not (agent.data_dir / "samples" / records[1]["id"]).exists()
