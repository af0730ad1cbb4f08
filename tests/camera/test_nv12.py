"""NV12 decoding, stacked stereo frames (rdk_agent.camera.nv12) and the rdk provider's shared reader."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from rdk_agent.camera.base import CameraError
from rdk_agent.camera.nv12 import nv12_to_bgr, split_stacked
from rdk_agent.camera.stereo.rdk_provider import NV12PairReader, RdkStereoPair
from rdk_agent.camera.stereo.render import StereoRig, WeldPlateScene, render_pair


def bgr_to_nv12(bgr: np.ndarray) -> bytes:
    """Encode BGR as NV12: OpenCV's I420 (Y, then the U plane, then the V plane) with U and V interleaved."""
    h, w = bgr.shape[:2]
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).ravel()
    y, chroma = i420[: w * h], i420[w * h :]
    u, v = chroma[: w * h // 4], chroma[w * h // 4 :]
    uv = np.empty(w * h // 2, np.uint8)
    uv[0::2], uv[1::2] = u, v
    return np.concatenate([y, uv]).tobytes()


def _stacked_scene(w: int = 320, h: int = 240) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth, coloured left view above a different right view (one top/bottom frame)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    left = np.stack([xs / w * 200 + 20, ys / h * 180 + 30, 120 + 60 * np.sin(xs / 17)], axis=-1)
    right = np.stack([200 - xs / w * 150, 90 + 50 * np.cos(ys / 13), ys / h * 220 + 10], axis=-1)
    cv2.circle(left, (100, 120), 30, (30, 200, 240), -1)
    cv2.rectangle(right, (150, 60), (260, 160), (230, 40, 60), -1)
    left, right = (np.clip(v, 0, 255).astype(np.uint8) for v in (left, right))
    return left, right, np.vstack([left, right])


def test_nv12_round_trip_of_a_top_bottom_frame():
    left, right, stacked = _stacked_scene()
    data = bgr_to_nv12(stacked)
    assert len(data) == 320 * 480 * 3 // 2
    decoded = nv12_to_bgr(data, 320, 480)
    assert decoded.shape == (480, 320, 3) and decoded.dtype == np.uint8
    err = np.abs(decoded.astype(np.int16) - stacked.astype(np.int16))
    assert err.mean() < 2.5  # chroma is subsampled 2x2: edges lose a little colour
    assert np.median(err) <= 1
    got_left, got_right = split_stacked(decoded, "tb")
    assert np.abs(got_left.astype(np.int16) - left).mean() < 2.5
    assert np.abs(got_right.astype(np.int16) - right).mean() < 2.5
    # the colours are where they were, not swapped (U/V order) nor mirrored
    assert np.abs(got_left[120, 100].astype(int) - (30, 200, 240)).max() <= 6
    assert np.abs(got_right[110, 200].astype(int) - (230, 40, 60)).max() <= 6


def test_nv12_accepts_arrays_and_refuses_wrong_sizes():
    _, _, stacked = _stacked_scene(64, 32)
    data = bgr_to_nv12(stacked)
    as_array = nv12_to_bgr(np.frombuffer(data, np.uint8).reshape(96, 64), 64, 64)
    assert np.array_equal(as_array, nv12_to_bgr(data, 64, 64))
    with pytest.raises(ValueError, match="has 6144 bytes, got 6143"):
        nv12_to_bgr(data[:-1], 64, 64)
    with pytest.raises(ValueError, match="even"):
        nv12_to_bgr(data, 63, 64)


def test_split_side_by_side_and_bad_layouts():
    frame = np.zeros((10, 8, 3), np.uint8)
    frame[:, 4:] = 255
    left, right = split_stacked(frame, "sbs")
    assert left.shape == right.shape == (10, 4, 3) and left.max() == 0 and right.min() == 255
    assert left.flags["C_CONTIGUOUS"]
    with pytest.raises(ValueError, match="even width"):
        split_stacked(frame[:, :7], "sbs")
    with pytest.raises(ValueError, match="even height"):
        split_stacked(frame[:9], "tb")
    with pytest.raises(ValueError, match="unknown stereo layout"):
        split_stacked(frame, "lr")


def test_rdk_reader_decodes_the_two_sensors_nv12_frames():
    """Everything after libsrcampy's get_img: a rendered pair served as the sensors' NV12 bytes."""
    scene = WeldPlateScene(texture_seed=2)
    rig = StereoRig(width=320, height=240, focal_px=350, cx=159.5, cy=119.5)
    left, right = render_pair(scene, rig)
    frames = {"left": [bgr_to_nv12(left), None], "right": [bgr_to_nv12(right)]}
    reader = NV12PairReader(lambda: frames["left"].pop(0), lambda: frames["right"].pop(0), 320, 240)
    got_left, got_right, stamp = reader.read_pair()
    assert got_left.shape == got_right.shape == (240, 320, 3)
    assert np.abs(got_left.astype(np.int16) - left).mean() < 2.5
    assert np.abs(got_right.astype(np.int16) - right).mean() < 2.5
    assert abs(stamp - time.time()) < 5 and reader.describe()["pairs"] == 1
    with pytest.raises(CameraError, match="left MIPI camera gave no frame"):
        reader.read_pair()  # get_img timed out (None)
    assert reader.describe()["timeouts"] == 1
    short = NV12PairReader(lambda: b"\0" * 100, lambda: b"\0" * 100, 320, 240)
    with pytest.raises(CameraError, match="left MIPI camera gave a bad frame"):
        short.read_pair()


def test_rdk_provider_without_hobot_vio_names_the_desktop_alternative():
    with pytest.raises(CameraError, match=r"hobot_vio.*stereo:files:"):
        RdkStereoPair()
