"""StereoCamera: a pair provider + a calibration + stereo depth behind the CameraSource interface.

``read()`` takes a raw pair, rectifies it at the working resolution and matches it: the frame's image is the
rectified left view and its depth the uint16 millimetres aligned to it (0 = invalid). ``status()`` carries
the provider, the calibration (file, baseline, RMS) and running averages of the valid fraction on the band
and of the time per frame.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from rdk_agent.camera.base import CameraError, CameraSource, Frame
from rdk_agent.camera.stereo.calibration import CALIBRATE_COMMAND, CalibrationError, StereoCalibration
from rdk_agent.camera.stereo.depth import DepthSettings, StereoDepth
from rdk_agent.camera.stereo.providers import PairProvider

DEFAULT_WORKING_WIDTH = 640
SETTING_KEYS = ("working_width", *DepthSettings.__dataclass_fields__)
_AVERAGE = 0.1  # weight of the newest frame in the running averages


class StereoCamera(CameraSource):
    """Rectified left image + stereo depth from ``provider``, calibrated by the file at ``calibration``."""

    def __init__(
        self,
        provider: PairProvider,
        calibration: str | Path,
        working_width: int = DEFAULT_WORKING_WIDTH,
        settings: DepthSettings | None = None,
        loaded: StereoCalibration | None = None,
    ) -> None:
        self.provider = provider
        self.calibration_path = Path(calibration)
        # CalibrationError names the calibrate command; ``loaded`` is the file's content when already read
        self.calibration = loaded or StereoCalibration.load(self.calibration_path)
        if working_width < 64:
            raise ValueError(f"stereo working width must be at least 64 px, got {working_width}")
        scale = min(1.0, working_width / self.calibration.image_size[0])
        self.rectification = self.calibration.rectification(scale)
        self.matcher = StereoDepth(self.rectification.focal_px, self.rectification.baseline_mm, settings)
        self._lock = threading.Lock()
        self._frames = 0
        self._averages: dict[str, float] = {}
        self._last_error: str | None = None

    def read(self) -> Frame:
        """The next pair, rectified, with its depth."""
        try:
            left, right, stamp = self.provider.read_pair()
            started = time.perf_counter()
            rect_left, rect_right = self.rectification.rectify(left, right)
            rectify_ms = (time.perf_counter() - started) * 1000
        except CameraError as exc:
            self._last_error = str(exc)
            raise
        result = self.matcher.compute(rect_left, rect_right)
        y0, y1 = result.band_rows
        band = result.depth[y0:y1]
        readings = band[band > 0]
        z_mm = float(np.median(readings)) if readings.size else None
        focal = self.rectification.focal_px
        described = self.provider.describe()
        meta = {
            "source": "stereo",
            "provider": described.get("kind"),
            "pair": described.get("last"),
            "depth_ms": round(result.ms, 2),
            "rectify_ms": round(rectify_ms, 2),
            "valid_fraction": round(result.valid_fraction, 4),
            "band_rows": [y0, y1],
            "baseline_mm": round(self.rectification.baseline_mm, 3),
            "focal_px": round(focal, 3),
            "mm_per_px": None if z_mm is None else round(z_mm / focal, 5),
        }
        with self._lock:
            self._frames += 1
            self._last_error = None
            latest = {"depth_ms": result.ms, "rectify_ms": rectify_ms, "valid_fraction": result.valid_fraction}
            for key, new in latest.items():
                old = self._averages.get(key)
                self._averages[key] = new if old is None else old + _AVERAGE * (new - old)
        return Frame(rgb=rect_left, depth=result.depth, timestamp=stamp, meta=meta)

    def status(self) -> dict:
        """Kind, provider, calibration, band, the running averages of valid fraction and timing."""
        provider = self.provider.describe()
        with self._lock:
            averages = {k: round(v, 4 if k == "valid_fraction" else 2) for k, v in self._averages.items()}
            frames = self._frames
        s = self.matcher.settings
        w, h = self.rectification.size
        return {
            "kind": "stereo",
            "provider": provider,
            "calibration": {
                "path": str(self.calibration_path),
                "baseline_mm": round(self.calibration.baseline_mm, 3),
                "rms_px": self.calibration.rms_px,
                "model": self.calibration.model,
                "image_size": list(self.calibration.image_size),
            },
            "working_size": [w, h],
            "focal_px": round(self.rectification.focal_px, 3),
            "depth_band_rows": list(self.matcher.band_rows(h)),
            "z_range_mm": list(s.z_range_mm),
            "frames": frames,
            "valid_fraction": averages.get("valid_fraction"),
            "depth_ms": averages.get("depth_ms"),
            "rectify_ms": averages.get("rectify_ms"),
            "connected": self._last_error is None and provider.get("connected", True),
            "last_error": self._last_error or provider.get("last_error"),
        }

    def close(self) -> None:
        """Close the provider."""
        self.provider.close()


def depth_settings(stereo: dict) -> tuple[int, DepthSettings]:
    """``(working_width, DepthSettings)`` from the config's ``stereo`` section; ValueError naming a bad key."""
    unknown = sorted(set(stereo) - set(SETTING_KEYS))
    if unknown:
        raise ValueError(f"unknown stereo setting(s) {', '.join(unknown)}; known: {', '.join(SETTING_KEYS)}")
    values: dict = {k: tuple(v) if isinstance(v, list) else v for k, v in stereo.items() if k != "working_width"}
    try:
        settings = DepthSettings(**values)
    except TypeError as exc:
        raise ValueError(f"bad stereo setting: {exc}") from None
    width = stereo.get("working_width", DEFAULT_WORKING_WIDTH)
    if isinstance(width, bool) or not isinstance(width, int):
        raise ValueError(f"stereo working_width must be an integer, got {width!r}")
    return width, settings


def open_provider(provider: str, target: str) -> PairProvider:
    """The pair provider of a parsed ``stereo:`` spec (the rdk one imports libsrcampy only now)."""
    from rdk_agent.camera.stereo.providers import FilePairs, StackedPairs

    if provider == "files":
        return FilePairs(target)
    if provider in ("tb", "sbs"):
        return StackedPairs(provider, target)
    from rdk_agent.camera.stereo.rdk_provider import RdkStereoPair

    if target:
        width, height = (int(v) for v in target.split("x"))
        return RdkStereoPair(width=width, height=height)
    return RdkStereoPair()


def open_stereo(arg: str, calibration: str | Path | None, stereo: dict) -> StereoCamera:
    """The ``stereo:<arg>`` source; refused (CalibrationError naming the calibrate command) without a calibration."""
    from rdk_agent.camera import parse_stereo_spec

    provider, target = parse_stereo_spec(arg)
    width, settings = depth_settings(stereo)
    if calibration is None:
        raise CalibrationError(f"a stereo camera needs a calibration file: run `{CALIBRATE_COMMAND}` first")
    loaded = StereoCalibration.load(calibration)
    return StereoCamera(open_provider(provider, target), calibration, width, settings, loaded)
