"""Model card and input contract: round trip, validation, and the shared preprocessing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_schema import InputContract, ModelCard, SchemaError, default_weld_schema
from shared_schema.preprocess import decode_depth, decode_image, preprocess, preprocess_batch

SCHEMA = default_weld_schema()


def _card(**overrides) -> ModelCard:
    fields = {"labels": tuple(SCHEMA.names), "label_schema_hash": SCHEMA.hash, "input": InputContract(96, 128)}
    fields.update(overrides)
    return ModelCard(**fields)


contracts = st.builds(
    lambda h, w, rgbd, resize, interp, order, orient: InputContract(
        height=h,
        width=w,
        channels="rgbd" if rgbd else "rgb",
        resize=resize,
        interpolation=interp,
        colour_order=order,
        orient=orient,
        mean=(0.5, 0.4, 0.3, 0.0) if rgbd else (0.5, 0.4, 0.3),
        std=(0.2, 0.2, 0.2, 1.0) if rgbd else (0.2, 0.2, 0.2),
    ),
    st.integers(8, 512),
    st.integers(8, 512),
    st.booleans(),
    st.sampled_from(["stretch", "letterbox"]),
    st.sampled_from(["auto", "area", "linear"]),
    st.sampled_from(["rgb", "bgr"]),
    st.sampled_from(["none", "landscape"]),
)


unit = st.floats(0.0, 1.0)
thresholds = st.one_of(
    st.tuples(st.none(), st.none()),
    st.tuples(unit, st.none()),
    st.tuples(st.none(), unit),
    st.tuples(unit, unit).map(sorted).map(tuple),
)


@settings(max_examples=50, deadline=None)
@given(
    contracts,
    st.dictionaries(st.text(max_size=8), st.floats(allow_nan=False), max_size=4),
    st.floats(1e-3, 1e3),
    thresholds,
)
def test_card_round_trips(contract, metrics, temperature, confidence_review):
    confidence, review = confidence_review
    card = _card(
        input=contract,
        metrics=metrics,
        provenance={"dataset_id": "d", "epochs": 3},
        temperature=temperature,
        confidence_threshold=confidence,
        review_threshold=review,
    )
    assert ModelCard.from_json(card.to_json()) == card


def test_a_card_without_calibration_fields_loads_with_neutral_values():
    data = _card(temperature=0.7, confidence_threshold=0.8, review_threshold=0.9).to_dict()
    for key in ("temperature", "confidence_threshold", "review_threshold"):
        del data[key]
    data["card_version"] = "1.0"
    card = ModelCard.from_dict(data)
    assert (card.temperature, card.confidence_threshold, card.review_threshold) == (1.0, None, None)
    assert ModelCard.from_dict({**data, "temperature": None}).temperature == 1.0


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"temperature": 0}, "temperature", "above 0"),
        ({"temperature": -1.5}, "temperature", "above 0"),
        ({"temperature": float("nan")}, "temperature", "finite"),
        ({"temperature": float("inf")}, "temperature", "finite"),
        ({"temperature": "hot"}, "temperature", "expected int or float"),
        ({"temperature": True}, "temperature", "got bool"),
        ({"temperature": 10**400}, "temperature", "out of range"),
        ({"temperature": 2.0, "output_kind": "probabilities"}, "temperature", "logits only"),
        ({"confidence_threshold": 1.2}, "confidence_threshold", "[0, 1]"),
        ({"confidence_threshold": "0.9"}, "confidence_threshold", "expected int or float"),
        ({"review_threshold": -0.1}, "review_threshold", "[0, 1]"),
        ({"confidence_threshold": 0.9, "review_threshold": 0.8}, "review_threshold", "below confidence_threshold"),
    ],
)
def test_invalid_calibration_fields_name_the_field(fields, field, message):
    data = {**_card().to_dict(), **fields}
    with pytest.raises(SchemaError) as info:
        ModelCard.from_json(json.dumps(data))
    assert info.value.field == field and message in info.value.message


def test_shape_reports_dynamic_batch():
    assert InputContract(96, 128, channels="rgbd", mean=(0, 0, 0, 0), std=(1, 1, 1, 1)).shape == ["batch", 4, 96, 128]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("labels"), "labels"),
        (lambda d: d["input"].update(channels="rgba"), "input.channels"),
        (lambda d: d["input"].update(mean=[0.5, 0.5]), "input.mean"),
        (lambda d: d["input"].update(std=[0.2, "x", 0.2]), "input.std[1]"),
        (lambda d: d["input"].update(height=2), "input.height"),
        (lambda d: d.update(precision="fp64"), "precision"),
        (lambda d: d.update(card_version="2.0"), "card_version"),
    ],
)
def test_invalid_cards_name_the_field(mutate, field):
    data = _card().to_dict()
    mutate(data)
    with pytest.raises(SchemaError) as info:
        ModelCard.from_dict(data)
    assert info.value.field == field


def test_garbage_card_text_is_a_schema_error():
    for text in ("", "[1, 2]", "{bad"):
        with pytest.raises(SchemaError):
            ModelCard.from_json(text)


def test_preprocess_normalises_and_orders_channels():
    contract = InputContract(8, 12, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    bgr = np.zeros((16, 24, 3), np.uint8)
    bgr[..., 0] = 255  # pure blue in OpenCV's BGR order
    x = preprocess(bgr, contract)
    assert x.shape == (3, 8, 12) and x.dtype == np.float32
    np.testing.assert_allclose(x[2], 1.0)  # blue lands in the last channel of RGB
    np.testing.assert_allclose(x[:2], 0.0)
    imagenet = InputContract(8, 12)
    y = preprocess(bgr, imagenet)
    np.testing.assert_allclose(y[2], (1.0 - 0.406) / 0.225, rtol=1e-6)


def test_preprocess_letterbox_pads_with_mean():
    contract = InputContract(10, 10, resize="letterbox", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    wide = np.full((5, 10, 3), 255, np.uint8)
    x = preprocess(wide, contract)
    assert abs(float(x[0, 0, 0])) < 0.05  # padding row is the mean: ~0 after normalising
    assert float(x[0, 5, 5]) == pytest.approx(2.0)  # image row: (1 - 0.5) / 0.25


def test_landscape_orient_turns_portrait_images_and_their_depth_clockwise():
    contract = InputContract(8, 16, channels="rgbd", orient="landscape", mean=(0,) * 4, std=(1,) * 4, depth_scale=1)
    tall = np.zeros((16, 8, 3), np.uint8)
    tall[0, 0] = 255  # top-left pixel: after a clockwise turn it is the top-right one
    depth = np.full((16, 8), 100, np.uint16)
    depth[0, 0] = 90
    x = preprocess(tall, contract, depth)
    assert x.shape == (4, 8, 16)
    assert float(x[0, 0, 15]) == pytest.approx(1.0) and float(x[0].sum()) == pytest.approx(1.0)
    assert float(x[3, 0, 15]) == pytest.approx(10.0)  # the depth reading turned with the image
    wide = np.zeros((8, 16, 3), np.uint8)
    wide[0, 0] = 255
    assert float(preprocess(wide, contract)[0, 0, 0]) == pytest.approx(1.0)  # landscape input is left alone
    unturned = InputContract(8, 16, resize="letterbox", mean=(0,) * 3, std=(1,) * 3)
    assert float(preprocess(tall, unturned)[0, :, :4].sum()) == 0.0  # no turn: letterboxed in the middle


def test_auto_interpolation_averages_when_shrinking_and_blends_when_enlarging():
    rng = np.random.default_rng(0)
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::2] = 255  # 1-px stripes: area averaging gives flat grey, bilinear sampling does not
    shrunk = preprocess(stripes, InputContract(16, 16, interpolation="auto", mean=(0,) * 3, std=(1,) * 3))
    np.testing.assert_allclose(shrunk, 0.5, atol=0.01)
    small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    kinds = {
        name: preprocess(small, InputContract(32, 32, interpolation=name, mean=(0,) * 3, std=(1,) * 3))
        for name in ("auto", "area", "linear")
    }
    np.testing.assert_array_equal(kinds["auto"], kinds["linear"])
    assert not np.array_equal(kinds["auto"], kinds["area"])  # area upscaling is blocky nearest-neighbour


def test_preprocess_rgbd_depth_is_relative_to_plate():
    contract = InputContract(8, 8, channels="rgbd", mean=(0, 0, 0, 0), std=(1, 1, 1, 1), depth_scale=0.5)
    rgb = np.zeros((8, 8, 3), np.uint8)
    depth = np.full((8, 8), 300, np.uint16)
    depth[2:4, :] = 296  # bead 4 mm above the plate
    depth[0, 0] = 0  # no reading
    x = preprocess(rgb, contract, depth)
    assert x.shape == (4, 8, 8)
    assert float(x[3, 2, 3]) == pytest.approx(2.0)  # 4 mm closer * 0.5
    assert float(x[3, 6, 6]) == pytest.approx(0.0)
    assert float(x[3, 0, 0]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="does not match"):
        preprocess(rgb, contract, np.zeros((4, 4), np.uint16))


def test_preprocess_batch_and_grey_input():
    contract = InputContract(16, 16)
    grey = np.random.default_rng(0).integers(0, 255, (20, 30), dtype=np.uint8)
    batch = preprocess_batch([grey, np.dstack([grey] * 3)], contract)
    assert batch.shape == (2, 3, 16, 16)
    np.testing.assert_array_equal(batch[0], batch[1])


def test_decoders_refuse_garbage():
    import cv2

    with pytest.raises(ValueError, match="not a decodable image"):
        decode_image(b"definitely not an image")
    with pytest.raises(ValueError, match="not a decodable image"):
        decode_image(b"")
    _, png8 = cv2.imencode(".png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="16-bit PNG"):
        decode_depth(png8.tobytes())
    _, png16 = cv2.imencode(".png", np.full((4, 4), 300, np.uint16))
    assert decode_depth(png16.tobytes()).dtype == np.uint16
    assert json.loads(_card().to_json())["input"]["shape"] == ["batch", 3, 96, 128]
