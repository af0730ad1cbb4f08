"""Replay and OpenCV camera sources behind the agent's API, in process: cycling, depth, loss and recovery."""

from __future__ import annotations

import shutil

import cv2
import numpy as np

from tests.agent_app import AUTH, AgentApp, api


def _capture(agent: AgentApp, label: str = "good"):
    return agent.client.post(agent.api("captures"), json={"label": label}, headers=agent.auth)


def _camera(agent: AgentApp) -> dict:
    return agent.client.get(agent.api("camera"), headers=agent.auth).json


def _stored_depth(agent: AgentApp, capture_id: str) -> np.ndarray:
    r = agent.client.get(agent.api(f"captures/{capture_id}/depth"), headers=agent.auth)
    return cv2.imdecode(np.frombuffer(r.data, np.uint8), cv2.IMREAD_UNCHANGED)


def test_replay_cycles_with_depth_and_recovers_from_a_lost_folder(agent_app, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    depth_a = rng.integers(0, 3000, (48, 64)).astype(np.float32)
    depth_a[0, 0] = np.nan
    depth_b = rng.integers(0, 60000, (48, 64), dtype=np.uint16)
    cv2.imwrite(str(folder / "a.png"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    np.save(folder / "a_depth.npy", depth_a)
    cv2.imwrite(str(folder / "b.jpg"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / "b_depth.png"), depth_b)
    cv2.imwrite(str(folder / "c.png"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")

    agent = agent_app(camera=f"replay:{folder}")
    records = [_capture(agent).json for _ in range(4)]
    assert [r["meta"]["camera"]["file"] for r in records] == ["a.png", "b.jpg", "c.png", "a.png"]
    assert ["depth" in r["files"] for r in records] == [True, True, False, True]
    expected_a = np.nan_to_num(depth_a).astype(np.uint16)
    assert np.array_equal(_stored_depth(agent, records[0]["id"]), expected_a)
    assert np.array_equal(_stored_depth(agent, records[1]["id"]), depth_b)

    r = agent.client.post(agent.api("camera/scene"), json={"label": "gap"}, headers=agent.auth)
    assert r.status_code == 409 and r.json["error"]["code"] == "conflict"

    backup = tmp_path / "backup"
    shutil.move(folder, backup)
    for _ in range(3):
        r = _capture(agent)
        assert r.status_code == 503 and r.json["error"]["code"] == "camera_unavailable"
    camera = agent.client.get(agent.api("status"), headers=agent.auth).json["camera"]
    assert camera["connected"] is False and camera["last_error"]
    shutil.move(backup, folder)
    assert _capture(agent).status_code == 201
    assert _camera(agent)["connected"] is True


def test_opencv_source_reopens_after_the_stream_ends_and_reports_a_missing_device(agent_app, tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 60 * i, np.uint8))
    writer.release()
    agent = agent_app(camera=f"opencv:{video}")
    for _ in range(5):  # more frames than the clip holds: the source must reopen it
        r = _capture(agent)
        assert r.status_code == 201 and (r.json["width"], r.json["height"]) == (64, 48)
    camera = _camera(agent)
    assert camera["kind"] == "opencv" and camera["reconnects"] >= 1

    missing = agent_app(camera="opencv:/dev/video-does-not-exist")
    r = _capture(missing)
    assert r.status_code == 503 and "cannot open camera" in r.json["error"]["message"]
    camera = _camera(missing)
    assert camera["connected"] is False and "cannot open" in camera["last_error"]
    assert missing.client.get("/healthz").status_code == 200


def test_scene_seed_over_http(client):
    r = client.post(api("camera/scene"), json={"label": "gap", "seed": 1000}, headers=AUTH)
    assert r.status_code == 200 and r.json == {"scene": "gap", "seed": 1000}
    assert client.get(api("camera"), headers=AUTH).json["seed"] == 1000
    for bad in (-1, 2**32, "7", True, 1.5):
        r = client.post(api("camera/scene"), json={"label": "gap", "seed": bad}, headers=AUTH)
        assert r.status_code == 400 and r.json["error"]["code"] == "bad_parameter", bad
    assert client.get(api("camera"), headers=AUTH).json["seed"] == 1000
