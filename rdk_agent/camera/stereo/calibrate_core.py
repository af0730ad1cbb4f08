"""Stereo calibration from checkerboard pairs: corner finding, per-camera and stereo calibration, validation.

The command (``python -m rdk_agent.calibrate``) feeds pairs to :func:`detect_pair`, then :func:`calibrate_stereo`
on the views whose board was found in both images, then :func:`validate`. Each camera is calibrated alone
(``calibrateCamera``; ``cv2.fisheye.calibrate`` for the fisheye model), then ``stereoCalibrate`` finds R and T
twice: with the intrinsics fixed, and refining them jointly from there; the joint result is kept when its RMS
reprojection error is lower. For the pinhole model k3 stays 0 unless asked for: with the usual 10-20 views it
overfits the image corners.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import cv2
import numpy as np

from rdk_agent.camera.stereo.calibration import DIST_COEFFS, StereoCalibration

_SUBPIX = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 60, 1e-4)
_FIND_FLAGS = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK


class CalibrationFailed(RuntimeError):
    """The views do not give a usable calibration; the message says what to change."""


@dataclass(frozen=True)
class Board:
    """A checkerboard: ``pattern`` counts inner corners (columns, rows), ``square_mm`` their spacing."""

    pattern: tuple[int, int] = (9, 6)
    square_mm: float = 15.0

    def object_points(self) -> np.ndarray:
        """Inner corners in the board frame, mm, in OpenCV's detection order (row by row)."""
        cols, rows = self.pattern
        grid = np.zeros((cols * rows, 3), np.float32)
        grid[:, :2] = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2) * self.square_mm
        return grid


@dataclass
class View:
    """One pair's corners (float32 (N, 1, 2) per camera)."""

    name: str
    left: np.ndarray
    right: np.ndarray


@dataclass
class StereoResult:
    """The calibration and the figures behind it."""

    calibration: StereoCalibration
    rms_left: float
    rms_right: float
    rms_stereo: float
    method: str  # "fixed intrinsics" or "joint"
    view_errors: dict[str, float] = field(default_factory=dict)  # per view RMS (px) over both cameras


def find_corners(image: np.ndarray, board: Board) -> np.ndarray | None:
    """Sub-pixel inner corners of ``board`` in a BGR or grey image, or None when the whole board is not seen."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    found, corners = cv2.findChessboardCorners(grey, board.pattern, flags=_FIND_FLAGS)
    if not found:
        return None
    return cv2.cornerSubPix(grey, corners, (5, 5), (-1, -1), _SUBPIX)


def detect_pair(name: str, left: np.ndarray, right: np.ndarray, board: Board) -> View | str:
    """The view's corners, or a sentence saying which image lacks the board and what to do."""
    if left.shape != right.shape:
        (lh, lw), (rh, rw) = left.shape[:2], right.shape[:2]
        return f"view {name}: the left image is {lw}x{lh}, the right {rw}x{rh}; both cameras must give one size"
    found = {side: find_corners(image, board) for side, image in (("left", left), ("right", right))}
    missing = [side for side, corners in found.items() if corners is None]
    if missing:
        cols, rows = board.pattern
        return (
            f"view {name}: no {cols}x{rows} checkerboard corners found in the {' and '.join(missing)} image; "
            "the whole board must be in both views, sharp and evenly lit (check --pattern counts inner corners)"
        )
    return View(name, found["left"], found["right"])  # type: ignore[arg-type]


def _calibrate_one(obj: list[np.ndarray], img: list[np.ndarray], size: tuple[int, int], model: str, k3: bool):
    """(rms, K, D) of one camera."""
    if model == "fisheye":
        flags = cv2.fisheye.CALIB_RECOMPUTE_EXTRINSIC | cv2.fisheye.CALIB_FIX_SKEW
        obj64 = [o.reshape(-1, 1, 3).astype(np.float64) for o in obj]
        rms, k, d, _, _ = cv2.fisheye.calibrate(obj64, img, size, np.eye(3), np.zeros(4), flags=flags)
        return rms, k, d.ravel()
    flags = cv2.CALIB_RATIONAL_MODEL if model == "rational" else (0 if k3 else cv2.CALIB_FIX_K3)
    rms, k, d, _, _ = cv2.calibrateCamera(obj, img, size, None, None, flags=flags)
    return rms, k, d.ravel()[: DIST_COEFFS[model]]


def _stereo(obj, left, right, k1, d1, k2, d2, size, model: str, joint: bool):
    """(rms, K1, D1, K2, D2, R, T) from ``stereoCalibrate`` with fixed or jointly refined intrinsics."""
    if model == "fisheye":
        flags = cv2.fisheye.CALIB_FIX_INTRINSIC if not joint else cv2.fisheye.CALIB_USE_INTRINSIC_GUESS
        flags |= cv2.fisheye.CALIB_FIX_SKEW
        obj64 = [o.reshape(-1, 1, 3).astype(np.float64) for o in obj]
        out = cv2.fisheye.stereoCalibrate(obj64, left, right, k1, d1, k2, d2, size, flags=flags)
        rms, k1, d1, k2, d2, rot, t = out[:7]
    else:
        flags = cv2.CALIB_USE_INTRINSIC_GUESS if joint else cv2.CALIB_FIX_INTRINSIC
        flags |= cv2.CALIB_RATIONAL_MODEL if model == "rational" else 0
        if model == "pinhole" and d1.size == 5 and d1[4] == 0 and d2[4] == 0:
            flags |= cv2.CALIB_FIX_K3
        rms, k1, d1, k2, d2, rot, t, _, _ = cv2.stereoCalibrate(obj, left, right, k1, d1, k2, d2, size, flags=flags)
    n = DIST_COEFFS[model]
    return rms, k1, np.ravel(d1)[:n], k2, np.ravel(d2)[:n], rot, np.ravel(t)


def _view_errors(views: list[View], obj: np.ndarray, cal: StereoCalibration) -> dict[str, float]:
    """Per view RMS reprojection error (px) over both cameras, the board's pose solved from the left view."""
    fisheye = cal.model == "fisheye"
    project = cv2.fisheye.projectPoints if fisheye else cv2.projectPoints
    undistort = cv2.fisheye.undistortPoints if fisheye else cv2.undistortPoints
    points = obj.reshape(-1, 1, 3).astype(np.float64)
    errors = {}
    for v in views:
        _, rvec, tvec = cv2.solvePnP(obj, undistort(v.left, cal.K1, cal.D1), np.eye(3), None)
        right_rvec = cv2.Rodrigues(cal.R @ cv2.Rodrigues(rvec)[0])[0]
        right_tvec = (cal.R @ tvec.ravel() + cal.T).reshape(3, 1)
        pl, _ = project(points, rvec, tvec, cal.K1, cal.D1)
        pr, _ = project(points, right_rvec, right_tvec, cal.K2, cal.D2)
        res = np.concatenate([(pl - v.left).reshape(-1, 2), (pr - v.right).reshape(-1, 2)])
        errors[v.name] = float(np.sqrt((res**2).sum(axis=1).mean()))
    return errors


def calibrate_stereo(
    views: list[View], image_size: tuple[int, int], board: Board, model: str = "pinhole", k3: bool = False
) -> StereoResult:
    """Calibrate from views with the board found in both images; CalibrationFailed when OpenCV cannot."""
    if model not in DIST_COEFFS:
        raise ValueError(f"unknown lens model {model!r}; use one of {', '.join(DIST_COEFFS)}")
    obj = [board.object_points() for _ in views]
    left, right = [v.left for v in views], [v.right for v in views]
    try:
        rms_l, k1, d1 = _calibrate_one(obj, left, image_size, model, k3)
        rms_r, k2, d2 = _calibrate_one(obj, right, image_size, model, k3)
        fixed = _stereo(obj, left, right, k1, d1, k2, d2, image_size, model, joint=False)
        joint = _stereo(obj, left, right, k1, d1, k2, d2, image_size, model, joint=True)
    except cv2.error as exc:
        raise CalibrationFailed(
            f"OpenCV could not calibrate these views ({exc.err}); capture more views with the board tilted "
            "differently and covering the whole image"
        ) from None
    best, method = (joint, "joint") if joint[0] < fixed[0] else (fixed, "fixed intrinsics")
    rms, k1, d1, k2, d2, rot, t = best
    cal = StereoCalibration(
        image_size=image_size,
        model=model,
        K1=k1,
        D1=d1,
        K2=k2,
        D2=d2,
        R=rot,
        T=t,
        rms_px=round(float(rms), 4),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    errors = _view_errors(views, board.object_points(), cal)
    return StereoResult(cal, float(rms_l), float(rms_r), float(rms), method, errors)


def validate(
    result: StereoResult,
    views_used: int,
    min_views: int = 8,
    max_rms_px: float = 1.0,
    baseline_range_mm: tuple[float, float] = (20.0, 300.0),
) -> list[str]:
    """Problems with a calibration, each naming what to do; empty when it is usable."""
    problems = []
    cal = result.calibration
    if views_used < min_views:
        problems.append(f"only {views_used} views have the board in both images; capture at least {min_views}")
    if result.rms_stereo > max_rms_px:
        problems.append(
            f"RMS reprojection error {result.rms_stereo:.3f} px exceeds {max_rms_px} px: check --square-mm and "
            "--pattern, drop blurred views, keep the board still and flat"
        )
    lo, hi = baseline_range_mm
    if not lo <= cal.baseline_mm <= hi:
        problems.append(
            f"baseline {cal.baseline_mm:.1f} mm is outside {lo:g}-{hi:g} mm: check --square-mm (the board's scale)"
        )
    if cal.T[0] > 0:
        problems.append("the right camera is left of the left one: the two cameras are swapped (swap left and right)")
    elif abs(cal.T[0]) < 2 * max(abs(cal.T[1]), abs(cal.T[2])):
        problems.append("the cameras are not side by side (T is not mostly along x): check the camera order")
    return problems
