"""The stereo: source end to end in process: providers on rendered pairs, the calibration it needs, specs, status.

Pairs are rendered small (320x240, one sample per pixel) to keep the file fast: these tests check the
plumbing and that depth comes out right to within a few millimetres; the accuracy figures are
tests/camera/test_stereo_depth.py's and bench/p8_stereo_depth.py's.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from rdk_agent.camera import open_camera, parse_camera_spec
from rdk_agent.camera.base import CameraError
from rdk_agent.camera.stereo.calibration import CALIBRATE_COMMAND
from rdk_agent.camera.stereo.providers import FilePairs
from rdk_agent.camera.stereo.render import StereoRig, WeldPlateScene, render_pair, truth_depth
from rdk_agent.camera.stereo.source import StereoCamera
from tests.agent_app import AUTH, AgentApp, api

RIG = StereoRig(width=320, height=240, focal_px=350.0, cx=159.5, cy=119.5)
SCENES = [
    WeldPlateScene(distance_mm=270.0, tilt_deg=(2.0, -1.0), bead_angle_deg=8.0, texture_seed=1),
    WeldPlateScene(distance_mm=305.0, tilt_deg=(-1.0, 3.0), bead_angle_deg=-12.0, texture_seed=2),
]


@pytest.fixture(scope="module")
def pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    return [render_pair(scene, RIG, supersample=1) for scene in SCENES]


@pytest.fixture
def calibration(tmp_path: Path) -> Path:
    path = tmp_path / "stereo_calibration.json"
    RIG.calibration().save(path)
    return path


def _write_pairs(folder: Path, pairs, layout: str = "names") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, (left, right) in enumerate(pairs):
        if layout == "names":
            cv2.imwrite(str(folder / f"p{i}_left.png"), left)
            cv2.imwrite(str(folder / f"p{i}_right.png"), right)
        elif layout == "dirs":
            for side, image in (("left", left), ("right", right)):
                (folder / side).mkdir(exist_ok=True)
                cv2.imwrite(str(folder / side / f"p{i}.png"), image)
        else:
            stacked = np.vstack([left, right]) if layout == "tb" else np.hstack([left, right])
            cv2.imwrite(str(folder / f"p{i}.png"), stacked)


def _plate_error(frame, scene: WeldPlateScene, rect) -> tuple[float, float]:
    """Median |depth - truth| (mm) over valid pixels, and the valid fraction, on the frame's band."""
    truth = truth_depth(scene, RIG, rect)
    y0, y1 = frame.meta["band_rows"]
    depth = frame.depth[y0:y1].astype(np.float32)
    valid = depth > 0
    return float(np.median(np.abs(depth - truth[y0:y1])[valid])), float(valid.mean())


@pytest.mark.parametrize("layout", ["names", "dirs"])
def test_file_pairs_cycle_in_name_order_and_give_depth(pairs, calibration, tmp_path, layout):
    folder = tmp_path / "pairs"
    _write_pairs(folder, pairs, layout)
    camera = open_camera(f"stereo:files:{folder}", calibration=calibration, stereo={"working_width": 320})
    assert isinstance(camera, StereoCamera)
    frames = [camera.read() for _ in range(3)]
    assert [f.meta["provider"] for f in frames] == ["files"] * 3
    assert camera.provider.describe()["last"].startswith("p0")  # wrapped: p0, p1, p0
    for frame, scene in zip(frames, [*SCENES, SCENES[0]], strict=True):
        assert frame.rgb.shape == (240, 320, 3) and frame.depth.dtype == np.uint16
        error, _ = _plate_error(frame, scene, camera.rectification)
        assert error < 1.5 and frame.meta["valid_fraction"] > 0.9, (error, frame.meta)  # half-size rig: 1 px ~ 3.7 mm
    status = camera.status()
    assert status["kind"] == "stereo" and status["frames"] == 3
    assert status["calibration"]["path"] == str(calibration)
    assert status["calibration"]["baseline_mm"] == pytest.approx(70.0)
    assert status["valid_fraction"] > 0.6 and status["depth_ms"] > 0


def test_file_pairs_rescan_at_wrap_and_refuse_an_empty_folder(pairs, tmp_path):
    folder = tmp_path / "pairs"
    _write_pairs(folder, pairs[:1])
    provider = FilePairs(folder)
    provider.read_pair()
    cv2.imwrite(str(folder / "q_left.png"), pairs[1][0])
    cv2.imwrite(str(folder / "q_right.png"), pairs[1][1])
    cv2.imwrite(str(folder / "r_left.png"), pairs[1][0])  # no right view: not a pair
    provider.read_pair()
    assert provider.describe()["items"] == 2 and provider.describe()["last"] == "p0_left.png"
    provider.read_pair()
    assert provider.describe()["last"] == "q_left.png"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CameraError, match="holds no stereo pairs"):
        FilePairs(empty)
    with pytest.raises(CameraError, match="does not exist"):
        FilePairs(tmp_path / "missing")


@pytest.mark.parametrize("layout", ["tb", "sbs"])
def test_stacked_frames_from_a_folder_split_into_the_same_pair(pairs, calibration, tmp_path, layout):
    folder = tmp_path / "stacked"
    _write_pairs(folder, pairs, layout)
    camera = open_camera(f"stereo:{layout}:{folder}", calibration=calibration, stereo={"working_width": 320})
    left, right, _ = camera.provider.read_pair()
    assert np.array_equal(left, pairs[0][0]) and np.array_equal(right, pairs[0][1])
    frame = camera.read()  # the second stacked frame
    error, _ = _plate_error(frame, SCENES[1], camera.rectification)
    assert error < 1.5
    assert camera.status()["provider"]["layout"] == layout


def test_stacked_opencv_device_reads_through_opencv_camera(pairs, calibration, tmp_path):
    video = tmp_path / "stacked.avi"
    stacked = np.vstack(pairs[0])
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (stacked.shape[1], stacked.shape[0]))
    for _ in range(3):
        writer.write(stacked)
    writer.release()
    camera = open_camera(f"stereo:tb:opencv:{video}", calibration=calibration, stereo={"working_width": 320})
    try:
        frame = camera.read()
        error, _ = _plate_error(frame, SCENES[0], camera.rectification)
        assert error < 2.0  # MJPEG-compressed views
        assert camera.status()["provider"]["kind"] == "stacked"
    finally:
        camera.close()


def test_a_stereo_camera_without_calibration_is_refused_naming_the_command(pairs, tmp_path):
    folder = tmp_path / "pairs"
    _write_pairs(folder, pairs)
    with pytest.raises(CameraError, match=CALIBRATE_COMMAND):
        open_camera(f"stereo:files:{folder}", calibration=tmp_path / "none.json")
    with pytest.raises(CameraError, match=CALIBRATE_COMMAND):
        open_camera(f"stereo:files:{folder}")


def test_a_calibration_for_another_image_size_is_refused(pairs, tmp_path):
    folder = tmp_path / "pairs"
    _write_pairs(folder, pairs)
    other = tmp_path / "other.json"
    StereoRig().calibration().save(other)  # 640x480, the pairs are 320x240
    camera = open_camera(f"stereo:files:{folder}", calibration=other)
    with pytest.raises(CameraError, match="calibration is for 640x480"):
        camera.read()
    assert "640x480" in camera.status()["last_error"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("stereo:", "unknown provider ''"),
        ("stereo:usb:0", "unknown provider 'usb'"),
        ("stereo:files:", "needs a folder"),
        ("stereo:tb:opencv:", "needs a folder or opencv:N"),
        ("stereo:rdk:1920", "WIDTHxHEIGHT"),
        ("ros2:depth", "ros2:<depth_topic>,<image_topic>"),
        ("ros2:/a,/b,/c", "ros2:<depth_topic>,<image_topic>"),
        ("stereo", "unknown provider"),
    ],
)
def test_bad_stereo_and_ros2_specs_name_the_forms(spec, message):
    with pytest.raises(ValueError, match=message.replace("|", r"\|").replace("(", r"\(")):
        parse_camera_spec(spec)


def test_good_specs_parse():
    assert parse_camera_spec("stereo:files:/data/pairs") == ("stereo", "files:/data/pairs")
    assert parse_camera_spec("stereo:tb:opencv:0") == ("stereo", "tb:opencv:0")
    assert parse_camera_spec("stereo:rdk") == ("stereo", "rdk")
    assert parse_camera_spec("stereo:rdk:1280x720") == ("stereo", "rdk:1280x720")
    assert parse_camera_spec("ros2") == ("ros2", "")
    assert parse_camera_spec("ros2:/d,/i") == ("ros2", "/d,/i")


def test_bad_stereo_settings_are_refused(pairs, calibration, tmp_path):
    folder = tmp_path / "pairs"
    _write_pairs(folder, pairs)
    with pytest.raises(ValueError, match="unknown stereo setting"):
        open_camera(f"stereo:files:{folder}", calibration=calibration, stereo={"bandd": [0.1, 0.9]})
    with pytest.raises(ValueError, match="depth band"):
        open_camera(f"stereo:files:{folder}", calibration=calibration, stereo={"band": [0.8, 0.2]})


def test_agent_on_a_stereo_camera_captures_depth_and_streams_the_depth_view(agent_app, pairs, tmp_path):
    folder = tmp_path / "pairs"
    _write_pairs(folder, pairs)
    calibration = tmp_path / "cal.json"
    RIG.calibration().save(calibration)
    agent: AgentApp = agent_app(camera=f"stereo:files:{folder}", calibration=calibration, stereo={"working_width": 320})
    r = agent.client.post(agent.api("captures"), json={"label": "good"}, headers=agent.auth)
    assert r.status_code == 201, r.json
    assert "depth" in r.json["files"] and r.json["meta"]["camera"]["source"] == "stereo"
    status = agent.client.get(agent.api("status"), headers=agent.auth).json["camera"]
    assert status["kind"] == "stereo" and status["has_depth"] is True
    assert status["calibration"]["baseline_mm"] == pytest.approx(70.0) and status["valid_fraction"] > 0.6

    r = agent.client.get(agent.api("stream.mjpg?view=depth"), headers=agent.auth)
    chunk = next(r.response)
    r.close()
    assert r.status_code == 200 and b"Content-Type: image/jpeg" in chunk
    jpeg = cv2.imdecode(np.frombuffer(chunk.split(b"\r\n\r\n", 1)[1], np.uint8), cv2.IMREAD_COLOR)
    assert jpeg.shape == (240, 320, 3)
    y0, y1 = status["depth_band_rows"]
    band = jpeg[y0 + 4 : y1 - 4]
    assert (band[:, :40].max(axis=2) < 40).mean() > 0.9  # the left strip the right camera cannot see: black
    assert (band[:, 160:].max(axis=2) > 80).mean() > 0.9  # depth readings: coloured
    assert (jpeg[: y0 - 4].max(axis=2) < 40).mean() > 0.9  # outside the band: no depth
    r = agent.client.get(agent.api("stream.mjpg?view=infrared"), headers=agent.auth)
    assert r.status_code == 400 and r.json["error"]["code"] == "bad_parameter"


def test_the_synthetic_camera_has_a_depth_view(client):
    r = client.get(api("stream.mjpg?view=depth"), headers=AUTH)
    assert r.status_code == 200 and b"image/jpeg" in next(r.response)
    r.close()


def test_the_depth_view_of_an_rgb_only_camera_is_refused(agent_app, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((48, 64, 3), 90, np.uint8))
    agent = agent_app(camera=f"replay:{folder}")
    r = agent.client.get(agent.api("stream.mjpg?view=depth"), headers=agent.auth)
    assert r.status_code == 409 and r.json["error"]["code"] == "no_depth"
    assert "stereo:" in r.json["error"]["message"]


def test_the_cli_refuses_a_stereo_camera_without_calibration(pairs, tmp_path, capsys):
    from rdk_agent.__main__ import main

    folder = tmp_path / "pairs"
    _write_pairs(folder, pairs)
    data = tmp_path / "data"
    assert main(["--data-dir", str(data), "--port", "0", "--camera", f"stereo:files:{folder}"]) == 2
    err = capsys.readouterr().err
    assert f"no stereo calibration at {data / 'stereo_calibration.json'}" in err and CALIBRATE_COMMAND in err
    assert main(["--data-dir", str(data), "--camera", "stereo:webcam:0"]) == 2
    assert "unknown provider 'webcam'" in capsys.readouterr().err


def test_the_calibration_defaults_to_the_data_dir_and_follows_the_flag(tmp_path):
    from rdk_agent.config import AgentConfig

    assert AgentConfig(data_dir=tmp_path).calibration == tmp_path.resolve() / "stereo_calibration.json"
    chosen = AgentConfig.build(data_dir=tmp_path, calibration=tmp_path / "cal.json")
    assert chosen.calibration == (tmp_path / "cal.json").resolve()
    assert AgentConfig.build(data_dir=tmp_path, env={"RDK_AGENT_CALIBRATION": "x.json"}).calibration.name == "x.json"


def test_board_only_sources_are_refused_here_with_what_to_use(pairs, calibration, tmp_path):
    with pytest.raises(CameraError, match=r"hobot_vio .*stereo:files:<folder>"):
        open_camera("stereo:rdk:1280x720", calibration=calibration)
    with pytest.raises(CameraError, match=CALIBRATE_COMMAND):  # the calibration is checked before the sensors
        open_camera("stereo:rdk", calibration=tmp_path / "none.json")
    with pytest.raises(CameraError, match="TogetheROS"):
        open_camera("ros2:/depth,/image")
