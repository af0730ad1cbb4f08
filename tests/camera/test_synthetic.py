"""The synthetic weld camera: determinism, shapes, per-label geometry, and classes that need learning."""

from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest

from rdk_agent.camera.base import CameraError, CameraSource
from rdk_agent.camera.synthetic import LABELS, SyntheticCamera, SyntheticWeldGenerator


def test_same_seed_same_frames_other_seed_other_frames():
    a, b, c = SyntheticWeldGenerator(seed=7), SyntheticWeldGenerator(seed=7), SyntheticWeldGenerator(seed=8)
    for label in ("good", "gap", "porosity"):
        fa, fb, fc = a.generate(label), b.generate(label), c.generate(label)
        assert np.array_equal(fa.rgb, fb.rgb) and np.array_equal(fa.depth, fb.depth)
        assert fa.meta == fb.meta
        assert not np.array_equal(fa.rgb, fc.rgb)


def test_frames_of_one_generator_differ():
    gen = SyntheticWeldGenerator(seed=1)
    first, second = gen.generate("good"), gen.generate("good")
    assert first.meta["index"] == 0 and second.meta["index"] == 1
    assert not np.array_equal(first.rgb, second.rgb)


@pytest.mark.parametrize(("width", "height"), [(640, 480), (320, 240), (200, 300)])
def test_shapes_and_dtypes(width, height):
    frame = SyntheticWeldGenerator(seed=3, width=width, height=height).generate("spatter")
    assert frame.rgb.shape == (height, width, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth.shape == (height, width) and frame.depth.dtype == np.uint16
    valid = frame.depth[frame.depth > 0].astype(float)
    assert 270 < np.median(valid) < 330  # camera about 300 mm above the plate
    assert (frame.depth == 0).any()  # stereo dropouts exist
    assert frame.rgb.std() > 5  # not a flat image


def test_unknown_label_and_tiny_size_are_refused():
    gen = SyntheticWeldGenerator()
    with pytest.raises(ValueError, match="unknown synthetic label 'crack'"):
        gen.generate("crack")
    with pytest.raises(ValueError, match="at least 64x64"):
        SyntheticWeldGenerator(width=32, height=32)


EXPECTED_DEFECTS = {
    "good": set(),
    "porosity": {"pore"},
    "spatter": {"droplet"},
    "gap": {"gap"},
    "undercut": {"undercut"},
}


@pytest.mark.parametrize("label", LABELS)
def test_meta_holds_label_and_geometry(label):
    gen = SyntheticWeldGenerator(seed=11)
    for _ in range(3):
        frame = gen.generate(label)
        meta = json.loads(json.dumps(frame.meta))  # JSON-able as stored with a capture
        assert meta["label"] == label
        assert {d["type"] for d in meta["defects"]} == EXPECTED_DEFECTS[label]
        assert 5 <= meta["bead"]["width_mm"] <= 12 and 1 <= meta["bead"]["height_mm"] <= 3
        assert meta["mm_per_px"] == pytest.approx(0.125)
        for defect in meta["defects"]:
            for x, y in _points(defect):
                assert 0 <= x < 640 and 0 <= y < 480


def _points(defect: dict) -> list[tuple[int, int]]:
    if "x" in defect:
        return [(defect["x"], defect["y"])]
    return [tuple(defect["start_px"]), tuple(defect["end_px"])]


def test_pores_are_dark_dips_and_droplets_bright_bumps():
    gen = SyntheticWeldGenerator(seed=5)
    pore_contrast, pore_dip, drop_contrast = [], [], []
    for _ in range(6):
        frame = gen.generate("porosity")
        grey, depth = cv2.cvtColor(frame.rgb, cv2.COLOR_BGR2GRAY).astype(float), frame.depth.astype(float)
        for pore in frame.meta["defects"]:
            x, y, r = pore["x"], pore["y"], pore["r_px"]
            ring = grey[max(0, y - 3 * int(r)) : y + 3 * int(r) + 1, max(0, x - 3 * int(r)) : x + 3 * int(r) + 1]
            pore_contrast.append(np.median(ring) - grey[y, x])
            ring_d = depth[max(0, y - 3 * int(r)) : y + 3 * int(r) + 1, max(0, x - 3 * int(r)) : x + 3 * int(r) + 1]
            if depth[y, x] > 0:
                pore_dip.append(depth[y, x] - np.median(ring_d[ring_d > 0]))
        frame = gen.generate("spatter")
        grey = cv2.cvtColor(frame.rgb, cv2.COLOR_BGR2GRAY).astype(float)
        for drop in frame.meta["defects"]:
            x, y = drop["x"], drop["y"]
            around = grey[max(0, y - 12) : y + 13, max(0, x - 12) : x + 13]
            drop_contrast.append(grey[y, x] - np.median(around))
    assert np.median(pore_contrast) > 40
    assert np.mean(pore_dip) > 0.3  # farther from the camera: a dip
    assert np.median(drop_contrast) > 25


def test_gap_leaves_the_plate_and_undercut_goes_below_it():
    gen = SyntheticWeldGenerator(seed=9)
    for _ in range(4):
        frame = gen.generate("gap")
        (gap,) = frame.meta["defects"]
        (x0, y0), (x1, y1) = gap["start_px"], gap["end_px"]
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        # flat plate in the middle of the gap, or a thin bridge of a fraction of the bead's height
        assert _ridge(frame.depth, cx, cy) < 0.5 + gap["fill"] * frame.meta["bead"]["height_mm"]
        bead_x, bead_y = (round(v) for v in frame.meta["bead"]["center_px"])
        if np.hypot(bead_x - cx, bead_y - cy) > gap["length_px"] / 2 + 20:  # the bead centre is outside the gap
            assert _ridge(frame.depth, bead_x, bead_y) > 0.5
    below = []
    for _ in range(4):
        frame = gen.generate("undercut")
        (cut,) = frame.meta["defects"]
        (x0, y0), (x1, y1) = cut["start_px"], cut["end_px"]
        assert np.hypot(x1 - x0, y1 - y0) > 100
        mx, my = (x0 + x1) // 2, (y0 + y1) // 2
        below.append(_median(frame.depth, mx, my, 1) - _median(frame.depth, mx, my, 70, ring=True))
    assert np.mean(below) > 0.2  # the groove is farther from the camera than the plate around it


def _median(depth: np.ndarray, x: int, y: int, r: int, ring: bool = False) -> float:
    win = depth[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1].astype(float)
    if ring:
        win = np.concatenate([win[0], win[-1], win[:, 0], win[:, -1]])
    return float(np.median(win[win > 0]))


def _ridge(depth: np.ndarray, x: int, y: int) -> float:
    """How far (mm) the surface at (x, y) stands above a ring of 70 px around it."""
    return _median(depth, x, y, 70, ring=True) - _median(depth, x, y, 3)


def _global_stats(frame) -> list[float]:
    grey = cv2.cvtColor(frame.rgb, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return [float(grey.mean()), float(grey.std())]


def test_classes_are_not_separable_by_global_brightness_statistics():
    """A nearest-class-mean classifier on (mean, std) of the grey image, fit on one seed, scored on another."""
    train = SyntheticWeldGenerator(seed=100, width=320, height=240)
    test = SyntheticWeldGenerator(seed=200, width=320, height=240)
    n = 30
    xs_train = np.array([[_global_stats(train.generate(lab)) for _ in range(n)] for lab in LABELS])  # (5, n, 2)
    xs_test = np.array([[_global_stats(test.generate(lab)) for _ in range(n)] for lab in LABELS])
    mu, sd = xs_train.reshape(-1, 2).mean(0), xs_train.reshape(-1, 2).std(0)
    for features in ([0], [1], [0, 1]):
        centres = ((xs_train - mu) / sd)[..., features].mean(axis=1)  # (5, k)
        z = ((xs_test - mu) / sd)[..., features].reshape(-1, len(features))
        predicted = np.argmin(((z[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        truth = np.repeat(np.arange(len(LABELS)), n)
        accuracy = float((predicted == truth).mean())
        assert accuracy < 0.5, f"global stats {features} separate the classes ({accuracy:.0%})"
    # and good vs any defect with the best single threshold on either statistic, chosen on the test set itself
    is_defect = np.repeat(np.arange(len(LABELS)) != 0, n)
    for k in range(2):
        values = xs_test[..., k].reshape(-1)
        best = max(max(((values > v) == is_defect).mean(), ((values <= v) == is_defect).mean()) for v in values)
        assert best < 0.9 and best <= is_defect.mean() + 0.1, f"statistic {k} thresholds good vs defect ({best:.0%})"


def test_camera_scene_control_and_status():
    cam = SyntheticCamera(seed=4, width=320, height=240)
    assert isinstance(cam, CameraSource)
    assert cam.status()["scene"] is None
    randoms = {cam.read().meta["label"] for _ in range(12)}
    assert len(randoms) >= 3  # None shows a random label per frame
    cam.set_scene("gap")
    frames = [cam.read() for _ in range(3)]
    assert [f.meta["label"] for f in frames] == ["gap"] * 3 and frames[0].meta["scene"] == "gap"
    assert frames[0].rgb.shape == (240, 320, 3)
    with pytest.raises(ValueError, match="unknown scene 'crack'"):
        cam.set_scene("crack")
    status = cam.status()
    assert status["kind"] == "synthetic" and status["scene"] == "gap" and status["frames"] == 15 and status["ok"]
    cam.close()
    assert cam.status()["ok"] is False
    with pytest.raises(CameraError):
        cam.read()


def test_camera_is_deterministic_and_safe_across_threads():
    first = [SyntheticCamera(seed=2, width=160, height=120).read() for _ in range(2)]
    assert np.array_equal(first[0].rgb, first[1].rgb) and first[0].meta["label"] == first[1].meta["label"]
    cam = SyntheticCamera(seed=2, width=160, height=120, scene="porosity")
    indexes: list[int] = []

    def reader() -> None:
        for _ in range(5):
            indexes.append(cam.read().meta["index"])

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(indexes) == list(range(20))


def test_a_new_seed_starts_a_new_batch_of_parts():
    cam = SyntheticCamera(seed=0, width=160, height=120, scene="porosity")
    first = cam.read()
    cam.set_scene("porosity", seed=1000)
    fresh = cam.read()
    expected = SyntheticWeldGenerator(seed=1000, width=160, height=120).generate("porosity")
    assert cam.status()["seed"] == 1000 and fresh.meta["seed"] == 1000
    np.testing.assert_array_equal(fresh.rgb, expected.rgb)  # frame 0 of the seed-1000 generator
    assert not np.array_equal(fresh.rgb, first.rgb)
    cam.set_scene("gap", seed=1000)  # the same seed keeps the batch going
    assert cam.read().meta["index"] == 1
