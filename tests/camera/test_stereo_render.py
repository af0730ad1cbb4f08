"""The stereo renderer (rdk_agent.camera.stereo.render): exact truth, true disparities, rules-readable beads."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from rdk_agent.camera.stereo.render import (
    StereoRig,
    WeldPlateScene,
    random_scene,
    render_pair,
    truth_depth,
    truth_masks,
)
from rdk_agent.inspection.rubric import Rubric
from rdk_agent.inspection.rules import RuleEvaluator

RIG = StereoRig()
DISTORTED = StereoRig.distorted()


def _plane_depth(scene: WeldPlateScene, rect) -> np.ndarray:
    """Z of the (bead-free) plate plane at every rectified-left pixel, from the plane's equation."""
    rx, ry = (math.radians(a) for a in scene.tilt_deg)
    c, s = math.cos(rx), math.sin(rx)
    rot_x = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    c, s = math.cos(ry), math.sin(ry)
    rot_y = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    normal = (rot_x @ rot_y)[:, 2]
    w, h = rect.size
    fx, cx, cy = rect.P1[0, 0], rect.P1[0, 2], rect.P1[1, 2]
    ys, xs = np.mgrid[0:h, 0:w]
    rays = np.stack([(xs - cx) / fx, (ys - cy) / fx, np.ones((h, w))], axis=-1) @ rect.R1  # world (left camera)
    t = normal @ np.array([0, 0, scene.distance_mm]) / (rays @ normal)
    return t  # rays have unit z in the rectified frame: Z = t


@pytest.mark.parametrize("rig", [RIG, DISTORTED], ids=["pinhole", "distorted"])
def test_truth_depth_of_a_bare_tilted_plate_is_the_plane(rig):
    scene = WeldPlateScene(distance_mm=300, tilt_deg=(3.0, -4.0), bead_offset_mm=1000)  # bead far out of view
    rect = rig.calibration().rectification(0.5)
    z = truth_depth(scene, rig, rect)
    assert z.shape == (240, 320) and z.dtype == np.float32
    np.testing.assert_allclose(z, _plane_depth(scene, rect), atol=1e-3)
    assert z.max() - z.min() > 10  # the tilt shows


def test_bead_crest_stands_its_height_out_of_the_plate():
    scene = WeldPlateScene(distance_mm=280, bead_height_mm=2.5, bead_width_mm=8, bead_angle_deg=12, bead_offset_mm=-6)
    rect = RIG.calibration().rectification(1.0)
    z = truth_depth(scene, RIG, rect)
    bead, plate = truth_masks(scene, RIG, rect)
    assert z.min() == pytest.approx(280 - 2.5, abs=0.02)
    np.testing.assert_allclose(z[plate], 280, atol=1e-3)
    assert (z[bead] < 280).all()
    # the bead band is about width / mm-per-pixel wide across its axis (measured along image columns)
    col = bead[:, 320]
    expected_px = 8 / math.cos(math.radians(12)) * rect.focal_px / 280
    assert col.sum() == pytest.approx(expected_px, abs=1.5)
    assert not (bead & plate).any()


def _match(left: np.ndarray, right: np.ndarray, x: int, y: int, half: int = 15) -> tuple[float, float]:
    """(disparity, vertical offset) of the left patch at (x, y) in the right image, sub-pixel by parabola fits."""
    patch = left[y - half : y + half + 1, x - half : x + half + 1]
    top, lo = y - half - 4, max(0, x - half - 260)
    window = right[top : y + half + 5, lo : x + half + 1]
    score = cv2.matchTemplate(window, patch, cv2.TM_CCOEFF_NORMED)
    iy, ix = np.unravel_index(int(score.argmax()), score.shape)
    assert score[iy, ix] > 0.8, "the views disagree on what the plate looks like"

    def peak(a: float, b: float, c: float) -> float:
        return 0.5 * (a - c) / (a - 2 * b + c)

    fx = ix + (peak(*score[iy, ix - 1 : ix + 2]) if 0 < ix < score.shape[1] - 1 else 0.0)
    fy = iy + (peak(*score[iy - 1 : iy + 2, ix]) if 0 < iy < score.shape[0] - 1 else 0.0)
    return x - half - (lo + fx), (top + fy) - (y - half)


@pytest.mark.parametrize("rig", [RIG, DISTORTED], ids=["pinhole", "distorted"])
def test_rectified_pair_has_the_disparity_of_the_truth(rig):
    scene = WeldPlateScene(distance_mm=265, tilt_deg=(2.0, -3.0), bead_offset_mm=40, texture_seed=5)
    rect = rig.calibration().rectification(1.0)
    left, right = rect.rectify(*render_pair(scene, rig))
    gl, gr = (cv2.cvtColor(im, cv2.COLOR_BGR2GRAY) for im in (left, right))
    z = truth_depth(scene, rig, rect)
    _, plate = truth_masks(scene, rig, rect)
    for x, y in [(250, 40), (590, 40), (250, 440), (590, 440), (420, 250)]:  # corners: most distortion
        assert plate[y, x]
        disparity, dy = _match(gl, gr, x, y)
        assert disparity == pytest.approx(rect.focal_px * rect.baseline_mm / z[y, x], abs=0.15)
        assert abs(dy) < 0.15


def test_distortion_bends_the_raw_image():
    scene = WeldPlateScene(texture_seed=9)
    straight, _ = render_pair(scene, RIG)
    bent, _ = render_pair(scene, DISTORTED)
    assert straight.shape == bent.shape == (480, 640, 3) and bent.dtype == np.uint8
    centre = (slice(200, 280), slice(280, 360))
    corner = (slice(0, 80), slice(0, 80))
    diff = np.abs(straight.astype(np.int16) - bent.astype(np.int16)).mean(axis=2)
    assert diff[corner].mean() > 3 * diff[centre].mean()  # barrel distortion grows toward the corners


def test_scenes_are_deterministic_and_textures_differ():
    scene = WeldPlateScene(texture_seed=3)
    a, _ = render_pair(scene, RIG)
    b, _ = render_pair(scene, RIG)
    c, _ = render_pair(WeldPlateScene(texture_seed=4), RIG)
    assert np.array_equal(a, b)
    assert np.abs(a.astype(np.int16) - c.astype(np.int16)).mean() > 3


def test_random_scenes_stay_in_the_issue_ranges():
    rng = np.random.default_rng(0)
    scenes = [random_scene(rng) for _ in range(200)]
    assert all(250 <= s.distance_mm <= 320 and 1.5 <= s.bead_height_mm <= 3 for s in scenes)
    assert all(6 <= s.bead_width_mm <= 10 and abs(s.bead_angle_deg) <= 20 for s in scenes)
    assert len({s.texture_seed for s in scenes}) == 200


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rules_find_the_bead_and_its_height_on_a_rendered_frame(seed):
    """With exact depth quantised to mm (dithered: bare rounding biases flat plates coherently)."""
    scene = random_scene(np.random.default_rng(seed))
    rect = RIG.calibration().rectification(1.0)
    left = rect.rectify_left(render_pair(scene, RIG)[0])
    z = truth_depth(scene, RIG, rect)
    depth = np.floor(z + np.random.default_rng(seed).uniform(0, 1, z.shape)).astype(np.uint16)
    rules = RuleEvaluator(Rubric(mm_per_px=scene.distance_mm / rect.focal_px))
    m = rules.evaluate(left, depth).measures
    assert m["bead_found"]
    assert m["height_mm"] == pytest.approx(scene.bead_height_mm, abs=0.2)
    assert m["width_mm"] == pytest.approx(scene.bead_width_mm, abs=2.0)
