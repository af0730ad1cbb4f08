"""Heat maps: peak cells mapped back through stretch, letterbox and the landscape turn; a real ORT session
with a cam output; the inspection result and the review queue carrying the map."""

from __future__ import annotations

import base64
import time

import cv2
import numpy as np
import pytest

from rdk_agent.inspection.heatmap import FrameGeometry, Grid, build_heatmap, class_map, fuse, peak_cell
from rdk_agent.inspection.onnx_model import ModelLoadError, OnnxClassifier
from shared_schema import InputContract, default_weld_schema
from tests.agent_app import multipart
from tests.helpers.cam_models import cam_card, cam_model_bytes

SCHEMA = default_weld_schema()


def one_hot(shape: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, np.float32)
    m[at] = 1.0
    return m


def contract(height: int = 32, width: int = 32, **fields) -> InputContract:
    return InputContract(height=height, width=width, **fields)


def cell_of(norm: np.ndarray, frame: tuple[int, int], c: InputContract) -> dict:
    return peak_cell(norm, FrameGeometry(frame[0], frame[1], c))["cell"]


def test_stretch_cell_is_the_frame_area_the_cell_covers():
    cell = cell_of(one_hot((4, 4), (1, 2)), (480, 640), contract())
    assert cell == {"x": 320.0, "y": 120.0, "width": 160.0, "height": 120.0}


def test_letterbox_cells_lose_the_padding():
    # 640x480 into 32x32: scale 0.05, 32x24 content with 4 rows of padding above and below
    c = contract(resize="letterbox")
    assert cell_of(one_hot((4, 4), (0, 0)), (480, 640), c) == {"x": 0.0, "y": 0.0, "width": 160.0, "height": 80.0}
    assert cell_of(one_hot((4, 4), (1, 3)), (480, 640), c) == {"x": 480.0, "y": 80.0, "width": 160.0, "height": 160.0}
    peak = peak_cell(one_hot((4, 4), (3, 0)), FrameGeometry(480, 640, c))
    assert peak["cell"]["y"] == 400.0 and peak["cell"]["height"] == 80.0
    assert peak["peak"] == {"x": 80.0, "y": 440.0}


def test_landscape_turn_is_undone():
    # a portrait 480x640 (w x h) frame is turned clockwise: the input's top-left is the frame's bottom-left
    c = contract(height=24, width=32, orient="landscape")
    cell = cell_of(one_hot((3, 4), (0, 0)), (640, 480), c)
    assert cell == {"x": 0.0, "y": 480.0, "width": 160.0, "height": 160.0}
    cell = cell_of(one_hot((3, 4), (2, 3)), (640, 480), c)  # input bottom-right: frame top-right
    assert cell == {"x": 320.0, "y": 0.0, "width": 160.0, "height": 160.0}
    # a landscape frame is not turned
    assert cell_of(one_hot((3, 4), (0, 0)), (480, 640), c) == {"x": 0.0, "y": 0.0, "width": 160.0, "height": 160.0}


def test_class_map_normalises_and_refuses_bad_maps():
    cam = np.stack([np.full((2, 3), 5.0), np.arange(6.0).reshape(2, 3)])
    assert class_map(cam, 0).max() == 0.0  # a flat map has no peak to stress
    norm = class_map(cam[None], 1)
    assert norm.min() == 0.0 and norm.max() == 1.0 and norm[1, 2] == 1.0
    with pytest.raises(ValueError, match="no map for class 2"):
        class_map(cam, 2)
    with pytest.raises(ValueError, match="not finite"):
        class_map(np.full((1, 2, 2), np.nan), 0)


def spot_frame(height: int, width: int, x: int, y: int, radius: int = 30) -> np.ndarray:
    """A white disc on the contract's mean grey (so letterbox borders look like the background)."""
    frame = np.full((height, width, 3), 128, np.uint8)
    cv2.circle(frame, (x, y), radius, (255, 255, 255), -1)
    return frame


def touches(cell: dict, x: int, y: int, radius: int) -> bool:
    return (
        cell["x"] - radius <= x <= cell["x"] + cell["width"] + radius
        and cell["y"] - radius <= y <= cell["y"] + cell["height"] + radius
    )


@pytest.mark.parametrize(
    ("frame_hw", "fields"),
    [
        ((480, 640), {"height": 32, "width": 32}),
        ((480, 640), {"height": 32, "width": 32, "resize": "letterbox"}),
        ((640, 480), {"height": 24, "width": 32, "orient": "landscape", "resize": "letterbox"}),
        ((600, 300), {"height": 32, "width": 64, "orient": "landscape"}),
        ((480, 640), {"height": 32, "width": 32, "resize": "letterbox", "fine": True}),
        ((640, 480), {"height": 24, "width": 32, "orient": "landscape", "resize": "letterbox", "fine": True}),
    ],
)
def test_a_bright_spot_comes_back_as_the_peak_through_a_real_session(frame_hw, fields):
    card = cam_card(SCHEMA, **fields)
    model = OnnxClassifier(cam_model_bytes(card), SCHEMA, intra_op_threads=1)
    assert model.cam_output == "cam"
    rng = np.random.default_rng(3)
    h, w = frame_hw
    for _ in range(6):
        x, y = int(rng.integers(30, w - 30)), int(rng.integers(30, h - 30))
        prediction = model.predict(spot_frame(h, w, x, y))
        assert prediction.label == "porosity" and prediction.cam is not None
        assert prediction.cam.shape == (len(SCHEMA.names), card.input.height // 8, card.input.width // 8)
        args = (prediction.index, prediction.label, (h, w, 3), card.input, card.provenance)
        heatmap = build_heatmap(prediction.cam, *args, prediction.cam_fine)
        maps = prediction.cam if prediction.cam_fine is None else prediction.cam_fine
        assert heatmap["shape"] == list(maps.shape[1:])
        assert heatmap["source"] == ("cam" if prediction.cam_fine is None else "cam_fine x cam")
        assert touches(heatmap["cell"], x, y, 30), (x, y, heatmap["cell"])
        overlay = cv2.imdecode(np.frombuffer(base64.b64decode(heatmap["png"]), np.uint8), cv2.IMREAD_UNCHANGED)
        assert overlay.shape[2] == 4 and max(overlay.shape[:2]) == 64
        assert abs(overlay.shape[0] / overlay.shape[1] - h / w) < 0.05
        oy, ox = np.unravel_index(int(np.argmax(overlay[..., 3])), overlay.shape[:2])
        scale = w / overlay.shape[1]
        assert touches(heatmap["cell"], int(ox * scale), int(oy * scale), int(2 * scale))


def test_fuse_keeps_the_fine_peak_inside_the_coarse_region():
    c = contract()
    coarse = one_hot((4, 4), (1, 2))  # cell (1, 2): input x 16..24, y 8..16
    fine = np.zeros((8, 8), np.float32)
    fine[0, 0] = 1.0  # a strong fine response outside the coarse region ...
    fine[3, 5] = 0.5  # ... and a weaker one inside it (x 20..24, y 12..16)
    fused = fuse(fine, coarse, Grid((4.0, 4.0), (2.0, 2.0)), Grid((8.0, 8.0), (4.0, 4.0)))
    assert fused.max() == 1.0 and np.unravel_index(int(fused.argmax()), fused.shape) == (3, 5)
    assert peak_cell(fused, FrameGeometry(480, 640, c), Grid((4.0, 4.0), (2.0, 2.0)))["cell"] == {
        "x": 400.0,
        "y": 180.0,
        "width": 80.0,
        "height": 60.0,
    }


def test_older_cards_have_no_map_and_a_card_naming_a_missing_output_is_refused():
    old = OnnxClassifier(cam_model_bytes(cam_card(SCHEMA, cam=False)), SCHEMA, intra_op_threads=1)
    assert old.cam_output is None
    assert old.predict(spot_frame(64, 64, 30, 30)).cam is None
    card = cam_card(SCHEMA)
    lying = cam_model_bytes(card.__class__(**{**card.__dict__, "extra_outputs": {"cam": "saliency"}}))
    with pytest.raises(ModelLoadError) as err:
        OnnxClassifier(lying, SCHEMA, intra_op_threads=1)
    assert err.value.code == "output_mismatch" and "saliency" in err.value.message


def test_inspection_returns_the_map_and_review_captures_keep_it(agent_app):
    agent = agent_app(inspection={"poll_interval_s": 0.1, "intra_op_threads": 1, "review_threshold": 1.0})
    card = cam_card(SCHEMA, resize="letterbox")
    (agent.models_dir / "model.onnx").write_bytes(cam_model_bytes(card))
    deadline = time.monotonic() + 15
    while (status := agent.client.get(agent.api("model"), headers=agent.auth).json)["state"] != "active":
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    frame = spot_frame(480, 640, 500, 100)
    _, png = cv2.imencode(".png", frame)
    reply = agent.client.post(
        agent.api("inspect"), headers=agent.auth, data=multipart({"image": ("spot.png", png.tobytes(), "image/png")})
    )
    assert reply.status_code == 200, reply.json
    result = reply.json
    heatmap = result["heatmap"]
    assert heatmap["label"] == result["onnx"]["label"] == "porosity"
    assert touches(heatmap["cell"], 500, 100, 30)
    assert result["latency_ms"]["heatmap"] > 0
    capture = agent.client.get(agent.api(f"captures/{result['review_capture_id']}"), headers=agent.auth).json
    kept = capture["meta"]["inspection"]["heatmap"]
    assert kept["peak"] == heatmap["peak"] and kept["png"] == heatmap["png"]
