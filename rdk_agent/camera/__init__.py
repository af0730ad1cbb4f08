"""Camera sources behind one interface; ``open_camera(spec)`` builds one from a spec string.

Specs: ``synthetic`` (generated weld frames, the default), ``replay:<folder>`` (cycles the images of a
folder, depth from ``<stem>_depth.npy`` or ``<stem>_depth.png``), ``opencv:<index|/dev/videoN|file|pipeline>``
(a real camera through OpenCV; a spec containing ``!`` is a GStreamer pipeline), ``stereo:<provider>`` (a
calibrated pair, depth by stereo matching; see ``rdk_agent.camera.stereo``) with the providers
``files:<folder>`` (``<name>_left``/``<name>_right`` images, or ``left/`` and ``right/`` subfolders),
``tb:<folder|opencv:N>`` / ``sbs:<folder|opencv:N>`` (both views in one frame, left above right or left
beside right) and ``rdk[:WxH]`` (the RDK X5's MIPI stereo module through libsrcampy, default 1920x1080),
and ``ros2[:<depth_topic>,<image_topic>]`` (the vendor's depth topics; needs TogetheROS on the board).
"""

from __future__ import annotations

import re
from pathlib import Path

from rdk_agent.camera.base import CameraError, CameraSource, Frame

CAMERA_SPEC_HELP = (
    "use 'synthetic', 'replay:<folder>', 'opencv:<index|/dev/videoN|gstreamer pipeline>', "
    "'stereo:files:<folder>', 'stereo:tb:<folder|opencv:N>', 'stereo:sbs:<folder|opencv:N>', "
    "'stereo:rdk[:WxH]' or 'ros2[:<depth_topic>,<image_topic>]'"
)
STEREO_PROVIDERS = ("files", "tb", "sbs", "rdk")
RDK_DEFAULT_SIZE = (1920, 1080)

__all__ = [
    "CAMERA_SPEC_HELP",
    "CameraError",
    "CameraSource",
    "Frame",
    "open_camera",
    "parse_camera_spec",
    "parse_ros2_topics",
    "parse_stereo_spec",
]


def parse_camera_spec(spec: str) -> tuple[str, str]:
    """Split ``spec`` into ``(kind, argument)``; ValueError naming the accepted forms if malformed."""
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "synthetic" and not arg:
        return kind, ""
    if kind in ("replay", "opencv") and arg.strip():
        return kind, arg.strip()
    if kind == "stereo":
        parse_stereo_spec(arg)
        return kind, arg.strip()
    if kind == "ros2":
        parse_ros2_topics(arg)
        return kind, arg.strip()
    raise ValueError(f"bad camera spec {spec!r}: {CAMERA_SPEC_HELP}")


def parse_stereo_spec(arg: str) -> tuple[str, str]:
    """``files:<folder>`` | ``tb:<target>`` | ``sbs:<target>`` | ``rdk[:WxH]`` -> ``(provider, target)``."""
    provider, _, target = arg.strip().partition(":")
    provider, target = provider.strip().lower(), target.strip()
    usage = (
        "'stereo:files:<folder>', 'stereo:tb:<folder|opencv:N>', 'stereo:sbs:<folder|opencv:N>' or 'stereo:rdk[:WxH]'"
    )
    if provider not in STEREO_PROVIDERS:
        raise ValueError(f"bad stereo camera spec 'stereo:{arg}': unknown provider {provider!r}; use {usage}")
    if provider == "rdk":
        if target and not re.fullmatch(r"[1-9]\d{1,4}x[1-9]\d{1,4}", target):
            raise ValueError(f"bad stereo camera spec 'stereo:{arg}': the size must be WIDTHxHEIGHT, e.g. 1920x1080")
        return provider, target
    if not target or target == "opencv:":
        raise ValueError(f"bad stereo camera spec 'stereo:{arg}': {provider} needs a folder or opencv:N; use {usage}")
    return provider, target


def parse_ros2_topics(arg: str) -> tuple[str, str] | None:
    """``''`` (the stereonet defaults) or ``<depth_topic>,<image_topic>``; ValueError otherwise."""
    arg = arg.strip()
    if not arg:
        return None
    parts = [p.strip() for p in arg.split(",")]
    if len(parts) != 2 or not all(p.startswith("/") and " " not in p for p in parts):
        raise ValueError(f"bad camera spec 'ros2:{arg}': use 'ros2' or 'ros2:<depth_topic>,<image_topic>' (absolute)")
    return parts[0], parts[1]


def open_camera(
    spec: str, seed: int = 0, calibration: str | Path | None = None, stereo: dict | None = None
) -> CameraSource:
    """Build the camera source for ``spec`` (opened lazily where the device allows).

    ``calibration`` is the stereo calibration file a ``stereo:`` spec needs; ``stereo`` the optional settings
    (``working_width`` and the DepthSettings fields, see ``rdk_agent.camera.stereo.source``).
    """
    kind, arg = parse_camera_spec(spec)
    if kind == "synthetic":
        from rdk_agent.camera.synthetic import SyntheticCamera

        return SyntheticCamera(seed=seed)
    if kind == "replay":
        from rdk_agent.camera.replay import ReplayCamera

        return ReplayCamera(arg)
    if kind == "stereo":
        from rdk_agent.camera.stereo.source import open_stereo

        return open_stereo(arg, calibration, stereo or {})
    if kind == "ros2":
        from rdk_agent.camera.ros2_source import Ros2Camera

        topics = parse_ros2_topics(arg)
        return Ros2Camera() if topics is None else Ros2Camera(*topics)
    from rdk_agent.camera.opencv_source import OpenCVCamera

    return OpenCVCamera(arg)
