"""Calibration views: a checkerboard at a pose, rendered by a :class:`StereoRig`, and poses that keep it in view."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from rdk_agent.camera.stereo.render import StereoRig, sensor_rays, to_sensor


def _board_corners(pattern: tuple[int, int], square_mm: float) -> np.ndarray:
    """The board's outer corners (with its one-square white margin), board frame, mm."""
    lo, hx, hy = -2 * square_mm, (pattern[0] + 1) * square_mm, (pattern[1] + 1) * square_mm
    return np.array([[lo, lo, 0], [hx, lo, 0], [lo, hy, 0], [hx, hy, 0]], np.float64)


def render_checkerboard_pair(
    rig: StereoRig,
    rvec: np.ndarray,
    tvec: np.ndarray,
    pattern: tuple[int, int] = (9, 6),
    square_mm: float = 15.0,
    supersample: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw left and right BGR images of a checkerboard at pose (rvec, tvec) in the left camera frame.

    ``pattern`` counts inner corners (OpenCV's convention); inner corner (i, j) is at (i, j) * square_mm on the
    board, the squares reach one square beyond the corners and a white margin one more.
    """
    rot = cv2.Rodrigues(np.asarray(rvec, np.float64))[0]
    tvec = np.asarray(tvec, np.float64).ravel()
    rng = np.random.default_rng(abs(hash((tuple(np.round(tvec, 3)), tuple(np.round(np.ravel(rvec), 5))))) % 2**32)
    shape = (rig.height * supersample, rig.width * supersample)
    out = []
    cols, rows, sq = pattern[0], pattern[1], np.float32(square_mm)
    for side in ("left", "right"):
        centre, dirs = sensor_rays(rig, side, supersample)
        origin = (rot.T @ (centre - tvec)).astype(np.float32)  # the camera centre in the board frame
        d = dirs @ rot.astype(np.float32)  # rows: rot^T d
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -origin[2] / d[:, 2]
            u, v = (origin[0] + t * d[:, 0]) / sq, (origin[1] + t * d[:, 1]) / sq  # in squares
        board = (u >= -2) & (u < cols + 1) & (v >= -2) & (v < rows + 1) & (t > 0)
        iu, iv = np.floor(u), np.floor(v)
        dark = board & (iu >= -1) & (iu < cols) & (iv >= -1) & (iv < rows) & (np.fmod(iu + iv + 4, 2) == 0)
        grey = np.where(board, np.float32(215), _backdrop(shape).ravel())
        grey[dark] = 35
        image = to_sensor(grey.reshape(shape), (rig.width, rig.height), 1.5, rng)
        out.append(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    return out[0], out[1]


@lru_cache(maxsize=2)
def _backdrop(shape: tuple[int, int]) -> np.ndarray:
    """A smooth grey background behind the board (float32, ``shape``)."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    return (95 + 20 * np.sin(xs * np.float32(6 / shape[1])) * np.cos(ys * np.float32(5 / shape[0]))).astype(np.float32)


def checkerboard_poses(
    n: int,
    rng: np.random.Generator,
    rig: StereoRig | None = None,
    pattern: tuple[int, int] = (9, 6),
    square_mm: float = 15.0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` board poses (rvec, tvec) with varied tilts and positions, the whole board visible to both cameras."""
    rig = rig or StereoRig()
    centre_board = np.array([(pattern[0] - 1) / 2, (pattern[1] - 1) / 2, 0.0]) * square_mm
    corners = _board_corners(pattern, square_mm)
    poses: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(200 * n):
        if len(poses) == n:
            return poses
        angles = np.radians(rng.uniform([-45, -45, -15], [45, 45, 15]))
        rot = cv2.Rodrigues(np.array([angles[0], 0, 0]))[0] @ cv2.Rodrigues(np.array([0, angles[1], angles[2]]))[0]
        z = rng.uniform(250, 400)
        centre = np.array(
            [rng.uniform(-0.25, 0.45) * z * rig.width / rig.focal_px, rng.uniform(-0.3, 0.3) * z * 0.75, z]
        )
        tvec = centre - rot @ centre_board
        rvec = cv2.Rodrigues(rot)[0].ravel()
        if all(_visible(rig, side, corners, rvec, tvec) for side in ("left", "right")):
            poses.append((rvec, tvec))
    raise ValueError(f"could not place {n} boards of {pattern} x {square_mm} mm in view of both cameras")


def _visible(
    rig: StereoRig, side: str, points: np.ndarray, rvec: np.ndarray, tvec: np.ndarray, margin: int = 8
) -> bool:
    """Whether board ``points`` project inside ``side``'s image, ``margin`` pixels clear of the border."""
    k, dist, rot, centre = rig.camera(side)
    board_rot = cv2.Rodrigues(rvec)[0]
    cam_rot = rot @ board_rot
    cam_t = rot @ (tvec - centre)
    if np.any((points @ cam_rot.T + cam_t)[:, 2] <= 0):
        return False
    px, _ = cv2.projectPoints(points, cv2.Rodrigues(cam_rot)[0], cam_t, k, dist)
    px = px.reshape(-1, 2)
    return bool(np.all((px >= margin) & (px < np.array([rig.width, rig.height]) - margin)))
