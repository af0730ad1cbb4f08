"""Camera sources behind one interface; ``open_camera(spec)`` builds one from a spec string.

Specs: ``synthetic`` (generated weld frames, the default), ``replay:<folder>`` (cycles the images of a
folder, depth from ``<stem>_depth.npy`` or ``<stem>_depth.png``), ``opencv:<index|/dev/videoN|file|pipeline>``
(a real camera through OpenCV; a spec containing ``!`` is a GStreamer pipeline).
"""

from __future__ import annotations

from rdk_agent.camera.base import CameraError, CameraSource, Frame

CAMERA_SPEC_HELP = "use 'synthetic', 'replay:<folder>' or 'opencv:<index|/dev/videoN|gstreamer pipeline>'"

__all__ = ["CAMERA_SPEC_HELP", "CameraError", "CameraSource", "Frame", "open_camera", "parse_camera_spec"]


def parse_camera_spec(spec: str) -> tuple[str, str]:
    """Split ``spec`` into ``(kind, argument)``; ValueError naming the accepted forms if malformed."""
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "synthetic" and not arg:
        return kind, ""
    if kind in ("replay", "opencv") and arg.strip():
        return kind, arg.strip()
    raise ValueError(f"bad camera spec {spec!r}: {CAMERA_SPEC_HELP}")


def open_camera(spec: str, seed: int = 0) -> CameraSource:
    """Build the camera source for ``spec`` (opened lazily where the device allows)."""
    kind, arg = parse_camera_spec(spec)
    if kind == "synthetic":
        from rdk_agent.camera.synthetic import SyntheticCamera

        return SyntheticCamera(seed=seed)
    if kind == "replay":
        from rdk_agent.camera.replay import ReplayCamera

        return ReplayCamera(arg)
    from rdk_agent.camera.opencv_source import OpenCVCamera

    return OpenCVCamera(arg)
