"""A real agent on a stereo: camera of rendered pairs: capture over HTTP, export the dataset, check the exported
depth against the exact depth, and inspect with depth (the rules' height)."""

from __future__ import annotations

import io
import tarfile

import cv2
import numpy as np
import pytest
import requests

from rdk_agent.camera.stereo.render import StereoRig, WeldPlateScene, render_pair, truth_depth, truth_masks
from tests.helpers.archive import verify_archive

RIG = StereoRig()
SCENES = {  # bead heights 1 mm apart, so an inspection tells which pair it saw
    "a": WeldPlateScene(
        distance_mm=285.0, tilt_deg=(2.0, -1.0), bead_height_mm=1.8, bead_angle_deg=6.0, texture_seed=3
    ),
    "b": WeldPlateScene(
        distance_mm=295.0, tilt_deg=(-1.5, 2.0), bead_height_mm=2.8, bead_angle_deg=-9.0, texture_seed=4
    ),
}
MM_PER_PX = 290.0 / RIG.focal_px  # the station's scale at its working distance


def _rules_height(image: np.ndarray, depth: np.ndarray) -> float:
    from rdk_agent.inspection.rubric import Rubric
    from rdk_agent.inspection.rules import RuleEvaluator

    return RuleEvaluator(Rubric(mm_per_px=MM_PER_PX)).evaluate(image, depth).measures["height_mm"]


def test_agent_captures_exports_and_inspects_with_stereo_depth(agent_process, tmp_path):
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    for name, scene in SCENES.items():
        left, right = render_pair(scene, RIG)
        cv2.imwrite(str(pairs / f"{name}_left.png"), left)
        cv2.imwrite(str(pairs / f"{name}_right.png"), right)
    calibration = tmp_path / "stereo_calibration.json"
    RIG.calibration().save(calibration)
    rect = RIG.calibration().rectification(1.0)  # the source's default working width is the rig's 640

    agent = agent_process(
        camera=f"stereo:files:{pairs}",
        args=["--calibration", str(calibration)],
        config={"rubric": {"mm_per_px": MM_PER_PX}},
    )
    ids = []
    for _ in SCENES:
        r = requests.post(agent.api("captures"), json={"label": "good"}, headers=agent.auth, timeout=30)
        assert r.status_code == 201, r.text
        assert "depth" in r.json()["files"]
        ids.append(r.json()["id"])
    status = requests.get(agent.api("status"), headers=agent.auth, timeout=10).json()["camera"]
    assert status["kind"] == "stereo" and status["provider"]["kind"] == "files"
    assert status["calibration"]["path"] == str(calibration) and status["valid_fraction"] >= 0.95
    assert status["depth_ms"] > 0 and status["has_depth"] is True

    r = requests.get(agent.api("dataset/export?format=tar"), headers=agent.auth, timeout=60)
    assert r.status_code == 200
    manifest = verify_archive(r.content)
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()[1:]}
    expected_heights = {}
    for sample in manifest.samples:
        assert sample.id in ids
        pair = sample.meta["camera"]["pair"]
        scene = SCENES[pair.split("_")[0]]
        image = cv2.imdecode(np.frombuffer(files[sample.rgb.path], np.uint8), cv2.IMREAD_COLOR)
        depth = cv2.imdecode(np.frombuffer(files[sample.depth.path], np.uint8), cv2.IMREAD_UNCHANGED)
        assert depth.dtype == np.uint16 and depth.shape == image.shape[:2] == (480, 640)
        truth = truth_depth(scene, RIG, rect)
        bead, plate = truth_masks(scene, RIG, rect)
        y0, y1 = sample.meta["camera"]["band_rows"]
        band = np.zeros_like(bead)
        band[y0:y1] = True
        seen = np.arange(640)[None, :] - rect.focal_px * rect.baseline_mm / truth >= 1
        valid = depth > 0
        assert np.median(np.abs(depth.astype(np.float32) - truth)[valid & plate & band]) <= 0.5
        assert valid[bead & band & seen].mean() >= 0.95
        exact = np.where(band, np.rint(truth), 0).astype(np.uint16)
        expected_heights[pair] = _rules_height(image, exact)
        assert _rules_height(image, depth) == pytest.approx(expected_heights[pair], abs=0.5)

        # the exported frame inspected over HTTP with its depth: the rules' height is the one above
        r = requests.post(
            agent.api("inspect"),
            files={
                "image": ("frame.png", files[sample.rgb.path], "image/png"),
                "depth": ("depth.png", files[sample.depth.path], "image/png"),
            },
            headers=agent.auth,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert r.json()["rules"]["measures"]["height_mm"] == pytest.approx(expected_heights[pair], abs=0.5)

    # the camera's current frame inspected with its depth: the height of one of the two pairs
    r = requests.post(agent.api("inspect"), json={}, headers=agent.auth, timeout=30)
    assert r.status_code == 200, r.text
    height = r.json()["rules"]["measures"]["height_mm"]
    assert height is not None
    assert min(abs(height - h) for h in expected_heights.values()) <= 0.5
