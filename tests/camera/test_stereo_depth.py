"""Stereo depth against the exact depth of rendered weld plates (the issue's figures, on two pairs here;
bench/p8_stereo_depth.py measures all twenty)."""

from __future__ import annotations

import numpy as np
import pytest

from rdk_agent.camera.stereo.depth import DepthSettings, StereoDepth
from rdk_agent.camera.stereo.render import StereoRig, WeldPlateScene, render_pair, truth_depth, truth_masks
from rdk_agent.inspection.rubric import Rubric
from rdk_agent.inspection.rules import RuleEvaluator

SCENE = WeldPlateScene(
    distance_mm=285.0,
    tilt_deg=(2.5, -1.5),
    bead_height_mm=2.2,
    bead_width_mm=8.0,
    bead_angle_deg=7.0,
    bead_offset_mm=4.0,
    texture_seed=11,
    texture_scale=0.8,
)
RIGS = {"pinhole": StereoRig(), "distorted": StereoRig.distorted()}


@pytest.fixture(scope="module", params=sorted(RIGS))
def rendered(request):
    """(rig, rectification, rectified left, rectified right, exact depth, bead mask, plate mask)."""
    rig = RIGS[request.param]
    rect = rig.calibration().rectification(1.0)
    left, right = rect.rectify(*render_pair(SCENE, rig))
    bead, plate = truth_masks(SCENE, rig, rect)
    return rig, rect, left, right, truth_depth(SCENE, rig, rect), bead, plate


def test_depth_matches_the_truth_and_the_rules_measure_the_same_height(rendered):
    _, rect, left, right, truth, bead, plate = rendered
    result = StereoDepth(rect.focal_px, rect.baseline_mm).compute(left, right)
    depth = result.depth
    assert depth.dtype == np.uint16 and depth.shape == truth.shape
    y0, y1 = result.band_rows
    band = np.zeros_like(bead)
    band[y0:y1] = True
    valid = depth > 0
    assert not valid[~band].any()  # nothing is matched outside the band
    seen = np.arange(truth.shape[1])[None, :] - rect.focal_px * rect.baseline_mm / truth >= 1
    assert valid[bead & band & seen].mean() >= 0.95
    assert result.valid_fraction >= 0.95
    error = np.abs(depth.astype(np.float32) - truth)[valid & plate & band]
    assert np.median(error) <= 0.5
    assert np.mean(error > 3) < 0.01  # few outliers

    rules = RuleEvaluator(Rubric(mm_per_px=SCENE.distance_mm / rect.focal_px))
    exact = np.where(band, np.rint(truth), 0).astype(np.uint16)
    height = rules.evaluate(left, depth).measures["height_mm"]
    expected = rules.evaluate(left, exact).measures["height_mm"]
    assert expected is not None and 1.5 < expected < 2.5
    assert height == pytest.approx(expected, abs=0.5)


def test_a_wrong_baseline_shows_in_the_depth(rendered):
    _, rect, left, right, truth, _, plate = rendered
    result = StereoDepth(rect.focal_px, rect.baseline_mm * 1.02).compute(left, right)
    valid = (result.depth > 0) & plate
    assert np.median(result.depth[valid] - truth[valid]) == pytest.approx(0.02 * SCENE.distance_mm, abs=1.5)


def test_unrelated_views_give_little_depth(rendered):
    _, rect, left, _, _, _, _ = rendered
    noise = np.random.default_rng(0).integers(0, 255, left.shape, dtype=np.uint8)
    result = StereoDepth(rect.focal_px, rect.baseline_mm).compute(left, noise)
    assert result.valid_fraction < 0.3


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"band": (0.7, 0.3)}, "depth band"),
        ({"band": (0.0, 1.2)}, "depth band"),
        ({"z_range_mm": (300.0, 200.0)}, "z_range_mm"),
        ({"residual_px": 24}, "multiple of 16"),
        ({"window": 8}, "odd"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        DepthSettings(**settings)


def test_views_of_different_sizes_are_refused():
    matcher = StereoDepth(700.0, 70.0)
    with pytest.raises(ValueError, match="differ in size"):
        matcher.compute(np.zeros((480, 640, 3), np.uint8), np.zeros((480, 320, 3), np.uint8))
