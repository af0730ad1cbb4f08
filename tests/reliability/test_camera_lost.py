"""Camera lost and back, at the API level: the replay folder disappears under a running agent, then returns.

tests/agent/test_cameras.py checks that a capture gets 503 while the folder is gone and works again
after; tests/page checks the banner. Here a preview viewer and the continuous inspection loop stay
connected through the loss: status reports it, every other endpoint keeps answering, and the
agent resumes by itself (the same MJPEG connection delivers frames again, the loop publishes again)
without any client retrying.
"""

from __future__ import annotations

import shutil
import threading
import time

import cv2
import numpy as np
import pytest
import requests

from tests.reliability.support import png_bytes, wait_until

pytestmark = pytest.mark.reliability


class Viewer:
    """One MJPEG connection read in the background; counts the JPEG frames it receives."""

    def __init__(self, agent) -> None:
        self.frames = 0
        self.error: Exception | None = None
        self.response = requests.get(agent.api("stream.mjpg"), headers=agent.auth, stream=True, timeout=30)
        assert self.response.status_code == 200
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for chunk in self.response.iter_content(4096):
                self.frames += chunk.count(b"\xff\xd8\xff")
        except Exception as exc:  # a dropped connection; or the test closing it at the end
            self.error = exc

    def close(self) -> None:
        self.response.close()


def _camera(agent) -> dict:
    return requests.get(agent.api("status"), headers=agent.auth, timeout=10).json()["camera"]


def test_replay_folder_lost_and_back_with_a_viewer_and_the_live_loop(agent_process, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((48, 64, 3), 60 + 40 * i, np.uint8))
    agent = agent_process(camera=f"replay:{folder}", config={"inspection": {"loop": True, "loop_interval_s": 0.2}})
    viewer = Viewer(agent)
    try:
        wait_until(lambda: viewer.frames >= 3)
        wait_until(lambda: requests.get(agent.api("inspect/latest"), headers=agent.auth, timeout=10).ok)

        shutil.move(folder, tmp_path / "unplugged")
        wait_until(lambda: _camera(agent)["connected"] is False, timeout=20)
        camera = _camera(agent)
        assert camera["last_error"] and camera["read_errors"] >= 1
        time.sleep(1.0)
        frames_while_lost = viewer.frames
        for path in ("captures", "inspect"):
            r = requests.post(agent.api(path), json={"label": "good"} if path == "captures" else None,
                              headers=agent.auth, timeout=30)  # fmt: skip
            assert r.status_code == 503 and r.json()["error"]["code"] == "camera_unavailable", r.text[:200]
        for path in ("status", "captures", "dataset/stats", "dataset/manifest", "model", "camera", "labels"):
            assert requests.get(agent.api(path), headers=agent.auth, timeout=10).status_code == 200, path
        r = requests.post(agent.api("inspect"), files={"image": ("u.png", png_bytes())}, headers=agent.auth,
                          timeout=30)  # fmt: skip
        assert r.status_code == 200 and r.json()["source"] == "upload"
        r = requests.post(agent.api("captures"), files={"image": ("u.png", png_bytes())}, data={"label": "gap"},
                          headers=agent.auth, timeout=30)  # fmt: skip
        assert r.status_code == 201
        lost_at = time.time()

        shutil.move(tmp_path / "unplugged", folder)  # plugged back: nobody retries anything
        wait_until(lambda: _camera(agent)["connected"] is True, timeout=20)
        wait_until(lambda: viewer.frames >= frames_while_lost + 3, timeout=20)  # the same connection resumes
        latest = wait_until(lambda: (r := requests.get(agent.api("inspect/latest"), headers=agent.auth, timeout=10))
                            .ok and r.json()["timestamp"] > lost_at and r.json(), timeout=20)  # fmt: skip
        assert latest["engine"] == "rules"
        assert requests.post(agent.api("captures"), json={"label": "good"}, headers=agent.auth, timeout=30).ok
        assert viewer.thread.is_alive() and viewer.error is None, f"the viewer's connection was dropped: {viewer.error}"
    finally:
        viewer.close()
