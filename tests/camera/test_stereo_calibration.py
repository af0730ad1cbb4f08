"""The stereo calibration file and its rectification (rdk_agent.camera.stereo.calibration)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from rdk_agent.camera.stereo.calibration import CalibrationError, StereoCalibration

K = np.array([[700.0, 0, 319.5], [0, 700.0, 239.5], [0, 0, 1]])


def _calibration(model: str = "pinhole") -> StereoCalibration:
    n = {"pinhole": 5, "rational": 8, "fisheye": 4}[model]
    d1 = np.zeros(n)
    d1[0] = -0.2 if model != "fisheye" else 0.02
    rot = cv2.Rodrigues(np.array([0.01, -0.02, 0.005]))[0]
    return StereoCalibration(
        (640, 480), model, K, d1, K * [[1.01], [1.01], [1]], np.zeros(n), rot, np.array([-70.0, 0.5, 0.2]), 0.21
    )


def test_save_load_round_trip(tmp_path):
    cal = _calibration()
    path = tmp_path / "stereo_calibration.json"
    cal.save(path)
    back = StereoCalibration.load(path)
    assert back.image_size == (640, 480) and back.model == "pinhole" and back.rms_px == pytest.approx(0.21)
    for name in ("K1", "D1", "K2", "D2", "R", "T"):
        np.testing.assert_allclose(getattr(back, name), getattr(cal, name))
    assert back.baseline_mm == pytest.approx(np.linalg.norm([70.0, 0.5, 0.2]))
    assert back.created_at  # stamped on save


def test_missing_and_corrupt_files_name_the_command(tmp_path):
    with pytest.raises(CalibrationError, match=r"python -m rdk_agent\.calibrate"):
        StereoCalibration.load(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CalibrationError, match=r"python -m rdk_agent\.calibrate"):
        StereoCalibration.load(bad)
    d = _calibration().to_dict()
    d["K1"] = [[1, 2], [3, 4]]
    bad.write_text(json.dumps(d))
    with pytest.raises(CalibrationError, match=r"'K1'.*python -m rdk_agent.calibrate"):
        StereoCalibration.load(bad)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("K2", [[-700, 0, 319.5], [0, 700, 239.5], [0, 0, 1]], "'K2'.*positive"),
        ("D1", [0.1, 0.2], "'D1'"),
        ("R", [[1, 0, 0], [0, 1, 0], [0, 0, 2]], "'R'.*rotation"),
        ("T", [0, 0, 0], "'T'"),
        ("T", [float("nan"), 0, 0], "'T'.*non-finite"),
        ("image_size", [640], "'image_size'"),
        ("model", "kannala", "'model'"),
        ("rms_px", -1, "'rms_px'"),
    ],
)
def test_invalid_fields_are_named(field, value, message):
    d = _calibration().to_dict()
    d[field] = value
    with pytest.raises(CalibrationError, match=message):
        StereoCalibration.from_dict(d)
    d.pop(field)
    if field != "rms_px":
        with pytest.raises(CalibrationError, match=f"'{field}'"):
            StereoCalibration.from_dict(d)


def _rectified_points(cal: StereoCalibration, scale: float, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project 3D points (left camera frame, mm) into both raw images, then into the rectified pair."""
    rect = cal.rectification(scale)
    out = []
    for k, d, rvec, tvec, r, p in (
        (cal.K1, cal.D1, np.zeros(3), np.zeros(3), rect.R1, rect.P1),
        (cal.K2, cal.D2, cv2.Rodrigues(cal.R)[0], cal.T, rect.R2, rect.P2),
    ):
        raw, _ = cv2.projectPoints(points, rvec, tvec, k, d)
        # raw pixels at the calibration's size; normalised rays are scale-free, so P maps them to the scaled frame
        out.append(cv2.undistortPoints(raw, k, d, R=r, P=p).reshape(-1, 2))
    return out[0], out[1]


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_rectified_rows_align_and_disparity_is_fb_over_z(scale):
    cal = _calibration()
    rng = np.random.default_rng(0)
    z = rng.uniform(250, 320, 50)
    pts = np.stack([rng.uniform(-40, 40, 50), rng.uniform(-30, 30, 50), z], axis=1)
    left, right = _rectified_points(cal, scale, pts)
    rect = cal.rectification(scale)
    assert rect.size == (round(640 * scale), round(480 * scale))
    assert rect.focal_px == pytest.approx(700 * 1.005 * scale, rel=0.05)
    assert rect.baseline_mm == pytest.approx(cal.baseline_mm, rel=1e-6)
    np.testing.assert_allclose(left[:, 1], right[:, 1], atol=1e-3)
    # depth along the rectified left camera's axis
    z_rect = (rect.R1 @ pts.T)[2]
    np.testing.assert_allclose(left[:, 0] - right[:, 0], rect.focal_px * rect.baseline_mm / z_rect, rtol=1e-4)


def test_remap_moves_a_marked_pixel_where_the_geometry_says():
    cal = _calibration()
    rect = cal.rectification(0.5)
    point = np.array([[12.0, -9.0, 280.0]])
    raw, _ = cv2.projectPoints(point, np.zeros(3), np.zeros(3), cal.K1, cal.D1)
    x, y = raw.ravel()
    img = np.zeros((480, 640, 3), np.uint8)
    cv2.circle(img, (round(x * 16), round(y * 16)), 6 * 16, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    out = rect.rectify_left(img)
    assert out.shape == (240, 320, 3)
    m = cv2.moments(out[:, :, 0].astype(np.float32))
    expected = cv2.undistortPoints(raw, cal.K1, cal.D1, R=rect.R1, P=rect.P1).ravel()
    assert m["m10"] / m["m00"] == pytest.approx(expected[0], abs=0.1)
    assert m["m01"] / m["m00"] == pytest.approx(expected[1], abs=0.1)


def test_wrong_input_size_is_refused():
    rect = _calibration().rectification()
    with pytest.raises(CalibrationError, match=r"1280x720.*640x480"):
        rect.rectify(np.zeros((720, 1280, 3), np.uint8), np.zeros((720, 1280, 3), np.uint8))


@pytest.mark.parametrize("model", ["rational", "fisheye"])
def test_other_lens_models_rectify(model):
    cal = _calibration(model)
    back = StereoCalibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    rect = back.rectification(0.5)
    assert rect.size == (320, 240) and rect.baseline_mm == pytest.approx(cal.baseline_mm)
    left, right = rect.rectify(np.full((480, 640, 3), 80, np.uint8), np.full((480, 640, 3), 80, np.uint8))
    assert left.shape == (240, 320, 3) and (left[120, 160] == 80).all() and (right[120, 160] == 80).all()


def test_vertical_pair_is_refused():
    cal = _calibration()
    vertical = StereoCalibration(
        (640, 480), "pinhole", K, np.zeros(5), K, np.zeros(5), np.eye(3), np.array([0.0, -70.0, 0.0])
    )
    assert cal.rectification().baseline_mm > 0
    with pytest.raises(CalibrationError, match="one above the other"):
        vertical.rectification()
