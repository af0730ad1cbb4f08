"""A stereo pair's calibration file and the rectification built from it.

:class:`StereoCalibration` holds what ``cv2.stereoCalibrate`` gives (intrinsics and distortion of each
camera, R and T of the right camera from the left, T in millimetres) with the sensor image size and the lens
model: ``pinhole`` (k1 k2 p1 p2 k3), ``rational`` (k1 k2 p1 p2 k3 k4 k5 k6) or ``fisheye`` (k1..k4, with
``cv2.fisheye``). It is stored as JSON (``python -m rdk_agent.calibrate`` writes it); a missing or invalid
file raises :class:`CalibrationError` naming that command.

:meth:`StereoCalibration.rectification` builds the row-aligned rectification at a working resolution
``image_size * scale``: the sensor images are first resized to that size (INTER_AREA when shrinking, so that
texture does not alias) and the camera matrices are scaled with them, then both are remapped with
fixed-point maps. In the rectified pair a point at depth Z (mm, rectified left frame) has disparity
``focal_px * baseline_mm / Z`` pixels (``CALIB_ZERO_DISPARITY``: the principal points coincide).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from rdk_agent.camera.base import CameraError
from rdk_agent.durable import atomic_write

CALIBRATE_COMMAND = "python -m rdk_agent.calibrate"
FORMAT = "rdk-stereo-calibration"
VERSION = 1
DIST_COEFFS = {"pinhole": 5, "rational": 8, "fisheye": 4}


class CalibrationError(CameraError):
    """The stereo calibration is missing, invalid, or does not fit the images."""


def _array(d: dict, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Field ``name`` of ``d`` as a finite float64 array of ``shape``; CalibrationError naming the field."""
    if name not in d:
        raise CalibrationError(f"calibration field {name!r} is missing")
    try:
        arr = np.asarray(d[name], dtype=np.float64).reshape(shape)
    except (TypeError, ValueError) as exc:
        got = np.shape(d[name]) if not isinstance(d[name], str) else "a string"
        raise CalibrationError(f"calibration field {name!r} must hold {shape} numbers, got {got}") from exc
    if not np.all(np.isfinite(arr)):
        raise CalibrationError(f"calibration field {name!r} holds a non-finite number")
    arr.setflags(write=False)
    return arr


def _check_camera_matrix(name: str, k: np.ndarray, image_size: tuple[int, int]) -> None:
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise CalibrationError(
            f"calibration field {name!r}: the focal lengths must be positive, got {k[0, 0]}, {k[1, 1]}"
        )
    if not (np.allclose(k[2], [0, 0, 1]) and k[1, 0] == 0):
        raise CalibrationError(f"calibration field {name!r} is not a camera matrix (last row must be 0 0 1)")
    w, h = image_size
    if not (0 <= k[0, 2] < w and 0 <= k[1, 2] < h):
        raise CalibrationError(
            f"calibration field {name!r}: principal point ({k[0, 2]}, {k[1, 2]}) lies outside {w}x{h}"
        )


def _scaled_camera_matrix(k: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """``k`` for an image resized by (sx, sy), pixel centres kept: x' + 0.5 = sx (x + 0.5)."""
    out = k.copy()
    out[0, 0] *= sx
    out[0, 1] *= sx
    out[1, 1] *= sy
    out[0, 2] = sx * (k[0, 2] + 0.5) - 0.5
    out[1, 2] = sy * (k[1, 2] + 0.5) - 0.5
    return out


@dataclass(frozen=True, eq=False)
class Rectification:
    """Row-aligned rectification of a stereo pair at ``size``; see the module docstring."""

    size: tuple[int, int]
    source_size: tuple[int, int]
    R1: np.ndarray
    R2: np.ndarray
    P1: np.ndarray
    P2: np.ndarray
    Q: np.ndarray
    focal_px: float
    baseline_mm: float
    maps: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] = field(repr=False)

    def _prepare(self, image: np.ndarray, which: str) -> np.ndarray:
        h, w = image.shape[:2]
        if (w, h) != self.source_size:
            raise CalibrationError(
                f"{which} image is {w}x{h} but the calibration is for {self.source_size[0]}x{self.source_size[1]}: "
                f"set the camera to that size or recalibrate with `{CALIBRATE_COMMAND}`"
            )
        if self.size == self.source_size:
            return image
        shrink = self.size[0] < w
        return cv2.resize(image, self.size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)

    def _remap(self, image: np.ndarray, index: int, which: str) -> np.ndarray:
        map1, map2 = self.maps[index]
        return cv2.remap(self._prepare(image, which), map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    def rectify(self, left_bgr: np.ndarray, right_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rectify a raw pair (at the calibration's image size) to ``size``."""
        return self._remap(left_bgr, 0, "left"), self._remap(right_bgr, 1, "right")

    def rectify_left(self, left: np.ndarray) -> np.ndarray:
        """Rectify the raw left image only (the image depth is aligned to)."""
        return self._remap(left, 0, "left")


@dataclass(frozen=True, eq=False)
class StereoCalibration:
    """Intrinsics, distortion and relative pose of a stereo pair; T in millimetres."""

    image_size: tuple[int, int]
    model: str
    K1: np.ndarray
    D1: np.ndarray
    K2: np.ndarray
    D2: np.ndarray
    R: np.ndarray
    T: np.ndarray
    rms_px: float | None = None
    created_at: str = ""

    @property
    def baseline_mm(self) -> float:
        """Distance between the two optical centres."""
        return float(np.linalg.norm(self.T))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` reads it back."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "image_size": [int(v) for v in self.image_size],
            "model": self.model,
            "K1": self.K1.tolist(),
            "D1": self.D1.ravel().tolist(),
            "K2": self.K2.tolist(),
            "D2": self.D2.ravel().tolist(),
            "R": self.R.tolist(),
            "T": self.T.ravel().tolist(),
            "baseline_mm": round(self.baseline_mm, 4),
            "rms_px": self.rms_px,
            "created_at": self.created_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StereoCalibration:
        """Validate and build; CalibrationError naming the offending field."""
        if not isinstance(d, dict):
            raise CalibrationError("a calibration must be a JSON object")
        if d.get("format", FORMAT) != FORMAT or d.get("version", VERSION) != VERSION:
            raise CalibrationError(
                f"not a {FORMAT} version {VERSION} file (format {d.get('format')!r}, version {d.get('version')!r})"
            )
        size = d.get("image_size")
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
            raise CalibrationError(
                f"calibration field 'image_size' must be [width, height] positive integers, got {size!r}"
            )
        image_size = (int(size[0]), int(size[1]))
        model = d.get("model")
        if model not in DIST_COEFFS:
            raise CalibrationError(f"calibration field 'model' must be one of {', '.join(DIST_COEFFS)}, got {model!r}")
        n = DIST_COEFFS[model]
        k1, k2 = _array(d, "K1", (3, 3)), _array(d, "K2", (3, 3))
        for name, k in (("K1", k1), ("K2", k2)):
            _check_camera_matrix(name, k, image_size)
        rot = _array(d, "R", (3, 3))
        if not (np.allclose(rot @ rot.T, np.eye(3), atol=1e-6) and abs(np.linalg.det(rot) - 1) < 1e-6):
            raise CalibrationError("calibration field 'R' is not a rotation matrix")
        t = _array(d, "T", (3,))
        if np.linalg.norm(t) <= 0:
            raise CalibrationError("calibration field 'T' is zero: the two cameras cannot be at one place")
        rms = d.get("rms_px")
        if rms is not None and not (isinstance(rms, (int, float)) and math.isfinite(rms) and rms >= 0):
            raise CalibrationError(f"calibration field 'rms_px' must be a non-negative number, got {rms!r}")
        return cls(
            image_size=image_size,
            model=model,
            K1=k1,
            D1=_array(d, "D1", (n,)),
            K2=k2,
            D2=_array(d, "D2", (n,)),
            R=rot,
            T=t,
            rms_px=None if rms is None else float(rms),
            created_at=str(d.get("created_at", "")),
        )

    def save(self, path: str | Path) -> None:
        """Write the calibration as JSON, atomically."""
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        atomic_write(Path(path), text.encode())

    @classmethod
    def load(cls, path: str | Path) -> StereoCalibration:
        """Read a calibration file; CalibrationError naming the file and the command when missing or invalid."""
        path = Path(path)
        fix = f"run `{CALIBRATE_COMMAND}` to create it"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CalibrationError(f"no stereo calibration at {path}: {fix}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CalibrationError(f"stereo calibration {path} is unreadable ({exc}): {fix}") from None
        try:
            return cls.from_dict(data)
        except CalibrationError as exc:
            raise CalibrationError(f"stereo calibration {path} is invalid: {exc}; {fix}") from None

    def rectification(self, scale: float = 1.0, alpha: float = 0.0) -> Rectification:
        """Rectification at ``image_size * scale`` (alpha 0: only valid pixels; 1: every source pixel kept)."""
        if not 0.05 <= scale <= 4:
            raise ValueError(f"rectification scale must be in [0.05, 4], got {scale}")
        w, h = self.image_size
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        sx, sy = size[0] / w, size[1] / h
        k1, k2 = _scaled_camera_matrix(self.K1, sx, sy), _scaled_camera_matrix(self.K2, sx, sy)
        t = self.T.reshape(3, 1)
        if self.model == "fisheye":
            r1, r2, p1, p2, q = cv2.fisheye.stereoRectify(
                k1, self.D1, k2, self.D2, size, self.R, t, cv2.CALIB_ZERO_DISPARITY, newImageSize=size, balance=alpha
            )
            init = cv2.fisheye.initUndistortRectifyMap
        else:
            flags = cv2.CALIB_ZERO_DISPARITY
            r1, r2, p1, p2, q, _, _ = cv2.stereoRectify(
                k1, self.D1, k2, self.D2, size, self.R, t, flags=flags, alpha=alpha, newImageSize=size
            )
            init = cv2.initUndistortRectifyMap  # type: ignore[assignment]
        if abs(p2[1, 3]) > abs(p2[0, 3]):
            raise CalibrationError(
                "the calibration places the cameras one above the other; the stereo source needs a left/right pair "
                f"(recalibrate with `{CALIBRATE_COMMAND}` with the left camera first)"
            )
        maps = (
            init(k1, self.D1, r1, p1, size, cv2.CV_16SC2),
            init(k2, self.D2, r2, p2, size, cv2.CV_16SC2),
        )
        focal = float(p1[0, 0])
        return Rectification(
            size=size,
            source_size=self.image_size,
            R1=r1,
            R2=r2,
            P1=p1,
            P2=p2,
            Q=q,
            focal_px=focal,
            baseline_mm=float(abs(p2[0, 3]) / p2[0, 0]),
            maps=(tuple(maps[0]), tuple(maps[1])),  # type: ignore[arg-type]
        )
