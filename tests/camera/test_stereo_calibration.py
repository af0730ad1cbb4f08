"""The stereo calibration file and its rectification (rdk_agent.camera.stereo.calibration)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from rdk_agent.camera.stereo.calibrate_core import Board, calibrate_stereo, detect_pair, validate
from rdk_agent.camera.stereo.calibration import CalibrationError, StereoCalibration
from rdk_agent.camera.stereo.checkerboard import checkerboard_poses, render_checkerboard_pair
from rdk_agent.camera.stereo.render import StereoRig

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


# --- calibrating from rendered checkerboard pairs (calibrate_core, python -m rdk_agent.calibrate)

BOARD = Board()
N_VIEWS = 10


@pytest.fixture(scope="module")
def board_pairs(tmp_path_factory) -> dict[str, Path]:
    """Folders of rendered checkerboard pairs (<stem>_left.png / <stem>_right.png) per rig."""
    folders = {}
    for name, rig in (("pinhole", StereoRig()), ("distorted", StereoRig.distorted())):
        folder = tmp_path_factory.mktemp(name)
        for i, (rvec, tvec) in enumerate(checkerboard_poses(N_VIEWS, np.random.default_rng(11), rig)):
            left, right = render_checkerboard_pair(rig, rvec, tvec)
            cv2.imwrite(str(folder / f"v{i:02d}_left.png"), left)
            cv2.imwrite(str(folder / f"v{i:02d}_right.png"), right)
        folders[name] = folder
    return folders


def _views(folder: Path, swap: bool = False) -> list:
    views = []
    for left_path in sorted(folder.glob("*_left.png")):
        left, right = cv2.imread(str(left_path)), cv2.imread(str(left_path).replace("_left", "_right"))
        found = detect_pair(left_path.stem, *((right, left) if swap else (left, right)), BOARD)
        assert not isinstance(found, str), found
        views.append(found)
    return views


def _calibrate_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rdk_agent.calibrate", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_calibrates_a_distorted_rig_from_rendered_pairs(board_pairs, tmp_path):
    out = tmp_path / "data" / "stereo_calibration.json"
    proc = _calibrate_cli("--pairs", str(board_pairs["distorted"]), "--data-dir", str(tmp_path / "data"))
    assert proc.returncode == 0, proc.stderr
    assert f"used {N_VIEWS} of {N_VIEWS} views" in proc.stdout and "view v03: 54 corners in both images" in proc.stdout
    rms = float(re.search(r"RMS reprojection error: ([\d.]+) px", proc.stdout)[1])
    baseline = float(re.search(r"baseline: ([\d.]+) mm", proc.stdout)[1])
    cal = StereoCalibration.load(out)  # the default path: <data-dir>/stereo_calibration.json
    assert rms < 0.5 and cal.rms_px == pytest.approx(rms, abs=1e-3)
    assert baseline == pytest.approx(70.0, rel=0.01) and cal.baseline_mm == pytest.approx(70.0, rel=0.01)
    assert cal.D1[0] == pytest.approx(-0.22, abs=0.03)  # the lens's barrel distortion is recovered


def _truth_rows(rig: StereoRig, cal: StereoCalibration) -> tuple[np.ndarray, np.ndarray]:
    """Rectified row mismatch (px) and depth (mm) by the calibration, of points projected by the true rig."""
    rng = np.random.default_rng(5)
    points = np.column_stack([rng.uniform(-80, 80, 200), rng.uniform(-60, 60, 200), rng.uniform(250, 320, 200)])
    rect = cal.rectification()
    rectified = []
    for side, k, d, r, p in (("left", cal.K1, cal.D1, rect.R1, rect.P1), ("right", cal.K2, cal.D2, rect.R2, rect.P2)):
        k_true, d_true, rot, centre = rig.camera(side)
        raw, _ = cv2.projectPoints(points, cv2.Rodrigues(rot)[0], -rot @ centre, k_true, d_true)
        rectified.append(cv2.undistortPoints(raw, k, d, R=r, P=p).reshape(-1, 2))
    (left, right), z_true = rectified, (rect.R1 @ points.T)[2]
    return left[:, 1] - right[:, 1], rect.focal_px * rect.baseline_mm / (left[:, 0] - right[:, 0]) - z_true


def test_calibration_of_a_pinhole_rig_rectifies_true_points(board_pairs):
    result = calibrate_stereo(_views(board_pairs["pinhole"]), (640, 480), BOARD)
    cal = result.calibration
    assert validate(result, N_VIEWS) == []
    assert result.rms_stereo < 0.5 and cal.baseline_mm == pytest.approx(70.0, rel=0.01)
    assert max(result.view_errors.values()) < 0.5
    dy, dz = _truth_rows(StereoRig(), cal)
    assert np.median(np.abs(dy)) < 0.2 and np.abs(dy).max() < 0.5  # rows align to a fraction of a pixel
    # 10 views: the calibration alone costs ~0.6 mm of depth at 250-320 mm (20 views at supersample 3: ~0.1-0.2)
    assert np.median(np.abs(dz)) < 1.0


def test_swapped_cameras_are_named(board_pairs):
    result = calibrate_stereo(_views(board_pairs["pinhole"], swap=True), (640, 480), BOARD)
    assert any("swapped" in p for p in validate(result, N_VIEWS))


def test_cli_names_views_without_the_board_and_saves_nothing(board_pairs, tmp_path):
    folder = tmp_path / "few"
    folder.mkdir()
    for i in range(3):
        for side in ("left", "right"):
            shutil.copy(board_pairs["pinhole"] / f"v{i:02d}_{side}.png", folder / f"v{i:02d}_{side}.png")
    shutil.copy(board_pairs["pinhole"] / "v05_left.png", folder / "v05_left.png")
    cv2.imwrite(str(folder / "v05_right.png"), np.full((480, 640, 3), 128, np.uint8))
    out = tmp_path / "cal.json"
    proc = _calibrate_cli("--pairs", str(folder), "--out", str(out))
    assert proc.returncode == 1
    assert "view v05: no 9x6 checkerboard corners found in the right image" in proc.stdout
    assert "only 3 views have the board in both images; capture at least 8" in proc.stderr
    assert not out.exists()
    wrong = _calibrate_cli("--pairs", str(folder), "--pattern", "8x6", "--out", str(out))
    assert wrong.returncode == 1 and "check --pattern" in wrong.stderr and not out.exists()


def test_cli_refuses_bad_arguments(tmp_path):
    bad = _calibrate_cli("--pairs", str(tmp_path), "--pattern", "nine")
    assert bad.returncode == 2 and "--pattern must be COLSxROWS" in bad.stderr
    empty = _calibrate_cli("--pairs", str(tmp_path))
    assert empty.returncode == 2 and "no <stem>_left.png / <stem>_right.png pairs" in empty.stderr


def test_cli_captures_from_a_stereo_provider(board_pairs, tmp_path):
    """--camera with the stereo source's own provider grammar (stereo:files: replays the pairs as a camera)."""
    out, saved = tmp_path / "cal.json", tmp_path / "views"
    spec = f"stereo:files:{board_pairs['pinhole']}"
    proc = _calibrate_cli(
        "--camera", spec, "--views", "9", "--interval", "0", "--out", str(out), "--save-views", str(saved)
    )
    assert proc.returncode == 0, proc.stderr
    assert "used 9 of 9 views" in proc.stdout
    assert StereoCalibration.load(out).baseline_mm == pytest.approx(70.0, rel=0.01)
    assert len(list(saved.glob("*_left.png"))) == len(list(saved.glob("*_right.png"))) == 9
    bad = _calibrate_cli("--camera", "stereo:webcam:0", "--out", str(out))
    assert bad.returncode == 2 and "unknown provider 'webcam'" in bad.stderr
