"""ROS 2 image messages and stamp pairing (rdk_agent.camera.ros_messages), with plain objects as messages."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from rdk_agent.camera.base import CameraError
from rdk_agent.camera.ros2_source import Ros2Camera
from rdk_agent.camera.ros_messages import PairedFrames, StampPairer, decode_image, frame_from_pair
from tests.camera.test_nv12 import bgr_to_nv12


def msg(array: np.ndarray | bytes, encoding: str, w: int, h: int, step: int, stamp=(10, 5), big: bool = False):
    """A sensor_msgs/Image look-alike."""
    data = array.tobytes() if isinstance(array, np.ndarray) else array
    header = SimpleNamespace(stamp=SimpleNamespace(sec=stamp[0], nanosec=stamp[1]), frame_id="left")
    return SimpleNamespace(header=header, height=h, width=w, encoding=encoding, is_bigendian=big, step=step, data=data)


def _depth(h: int = 6, w: int = 5) -> np.ndarray:
    return (np.arange(h * w, dtype=np.uint16).reshape(h, w) * 997 + 250) % 65535


def test_mono16_little_and_big_endian():
    depth = _depth()
    little = decode_image(msg(depth.astype("<u2"), "mono16", 5, 6, 10))
    big = decode_image(msg(depth.astype(">u2"), "mono16", 5, 6, 10, big=True))
    assert little.dtype == big.dtype == np.uint16
    assert np.array_equal(little, depth) and np.array_equal(big, depth)
    # read with the wrong byte order the values differ: the flag is honoured, not ignored
    assert not np.array_equal(decode_image(msg(depth.astype(">u2"), "mono16", 5, 6, 10)), depth)


def test_padded_rows_are_cut_at_width():
    depth = _depth()
    padded = np.zeros((6, 8), "<u2")  # 16-byte rows for 10 bytes of pixels
    padded[:, :5] = depth
    padded[:, 5:] = 65535  # padding that must not leak in
    assert np.array_equal(decode_image(msg(padded, "16UC1", 5, 6, 16)), depth)
    bgr = np.random.default_rng(0).integers(0, 256, (4, 3, 3), dtype=np.uint8)
    rows = np.zeros((4, 12), np.uint8)
    rows[:, :9] = bgr.reshape(4, 9)
    assert np.array_equal(decode_image(msg(rows, "bgr8", 3, 4, 12)), bgr)
    rgb = decode_image(msg(rows, "rgb8", 3, 4, 12))
    assert np.array_equal(rgb, bgr[:, :, ::-1])
    grey = decode_image(msg(rows, "mono8", 9, 4, 12))
    assert grey.shape == (4, 9) and np.array_equal(grey, bgr.reshape(4, 9))


def test_nv12_message_decodes_to_bgr_with_and_without_row_padding():
    ys, xs = np.mgrid[0:32, 0:48]
    bgr = np.stack([xs * 3, ys * 4 + 40, 220 - xs * 2], axis=-1).astype(np.uint8)
    nv12 = np.frombuffer(bgr_to_nv12(bgr), np.uint8).reshape(48, 48)
    padded = np.full((48, 64), 255, np.uint8)
    padded[:, :48] = nv12
    for data, step in ((nv12, 48), (padded, 64)):
        out = decode_image(msg(data, "nv12", 48, 32, step))
        assert out.shape == (32, 48, 3)
        assert np.abs(out.astype(np.int16) - bgr).mean() < 2.0


@pytest.mark.parametrize(
    ("encoding", "data", "step", "error"),
    [
        ("32FC1", b"\0" * 120, 20, "unsupported image encoding '32FC1'"),
        ("mono16", b"\0" * 50, 10, "holds 50 bytes"),
        ("mono16", b"\0" * 60, 8, "step 8 is shorter than a row"),
    ],
)
def test_bad_messages_are_refused(encoding, data, step, error):
    with pytest.raises(ValueError, match=error):
        decode_image(msg(data, encoding, 5, 6, step))


def _pair(stamp, value: int = 300):
    depth = np.full((4, 6), value, "<u2")
    image = np.full((4, 6, 3), value % 256, np.uint8)
    return msg(depth, "mono16", 6, 4, 12, stamp), msg(image, "bgr8", 6, 4, 18, stamp)


def test_pairer_matches_exact_stamps_out_of_order():
    pairer = StampPairer(max_pending=4)
    d1, i1 = _pair((1, 100))
    d2, i2 = _pair((1, 200))
    d3, i3 = _pair((2, 0))
    near = _pair((1, 101))[1]  # one nanosecond off: never a partner
    assert pairer.offer("depth", d1) is None
    assert pairer.offer("depth", d2) is None
    assert pairer.offer("image", near) is None
    assert pairer.offer("image", i2) == (d2, i2)  # image first completes the newer pair
    assert pairer.offer("image", i1) is None  # older than the last pair: stale, dropped
    assert pairer.offer("image", i3) is None
    assert pairer.offer("depth", d3) == (d3, i3)
    assert pairer.dropped >= 3  # d1 and the near-miss image went with the pair at (1, 200), then i1


def test_pairer_keeps_a_bounded_buffer():
    pairer = StampPairer(max_pending=3)
    for n in range(10):
        assert pairer.offer("depth", _pair((5, n))[0]) is None
    assert pairer.dropped == 7
    assert pairer.offer("image", _pair((5, 1))[1]) is None  # its depth was dropped from the full buffer
    _, i = _pair((5, 9))
    assert pairer.offer("image", i)[0].header.stamp.nanosec == 9


def test_frame_from_pair_aligns_the_image_to_the_depth():
    depth = _depth(352, 640)
    image = np.random.default_rng(1).integers(0, 256, (704, 1280, 3), dtype=np.uint8)
    frame = frame_from_pair(
        msg(depth, "mono16", 640, 352, 1280, (7, 500_000_000)), msg(bgr_to_nv12(image), "nv12", 1280, 704, 1280)
    )
    assert frame.depth.dtype == np.uint16 and np.array_equal(frame.depth, depth)
    assert frame.rgb.shape == (352, 640, 3) and frame.meta["image_resized_to_depth"]
    assert frame.timestamp == pytest.approx(7.5)
    grey = frame_from_pair(msg(depth, "mono16", 640, 352, 1280), msg(depth.astype(np.uint8), "mono8", 640, 352, 640))
    assert grey.rgb.shape == (352, 640, 3)
    with pytest.raises(ValueError, match="mono16"):
        frame_from_pair(msg(image[:4, :6], "bgr8", 6, 4, 18), msg(image[:4, :6], "bgr8", 6, 4, 18))


def test_paired_frames_serve_the_newest_pair_and_time_out():
    frames = PairedFrames(timeout_s=0.3)
    with pytest.raises(CameraError, match=r"no depth\+image pair.*received 0 depth, 0 image"):
        frames.read()

    def publish():
        for n, stamp in enumerate([(3, 0), (3, 1), (3, 2)]):
            d, i = _pair(stamp, 300 + n)
            frames.offer("image", i)
            time.sleep(0.01)
            frames.offer("depth", d)

    thread = threading.Thread(target=publish)
    thread.start()
    thread.join()
    frame = frames.read()
    assert int(frame.depth[0, 0]) == 302 and frame.meta["stamp"] == [3, 2]
    assert frames.status()["pairs"] == 3 and frames.status()["received"] == {"depth": 3, "image": 3}
    time.sleep(0.35)  # no new pair: the last one is stale now
    with pytest.raises(CameraError, match="received 3 depth, 3 image"):
        frames.read()


def test_a_reader_waits_for_the_next_pair():
    frames = PairedFrames(timeout_s=2.0)
    d, i = _pair((9, 9), 777)
    timer = threading.Timer(0.1, lambda: (frames.offer("depth", d), frames.offer("image", i)))
    timer.start()
    started = time.monotonic()
    frame = frames.read()
    assert int(frame.depth[0, 0]) == 777 and time.monotonic() - started < 1.5
    assert np.array_equal(frame.rgb, cv2.merge([np.full((4, 6), 777 % 256, np.uint8)] * 3))


def test_ros2_camera_without_rclpy_names_togetheros():
    with pytest.raises(CameraError, match="TogetheROS"):
        Ros2Camera()
