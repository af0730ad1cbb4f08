"""+experiment=anomaly on a tiny generated folder: fit on good only, export, and the ONNX score separates defects.

The images are a smooth random texture; a defect adds a small dark or bright blob at a random place.
A from-scratch (untrained) Lite0 at 64 px keeps the test free of weight files; its random features
still see a blob as unlike every good patch, and the test fails if the score, the export, the
threshold or the card do not.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from desktop_trainer.anomaly.run import run_anomaly
from desktop_trainer.train import run
from shared_schema import card_from_metadata
from shared_schema.anomaly import AnomalySettings
from shared_schema.errors import SchemaError
from shared_schema.preprocess import preprocess
from tests.trainer.trainer_support import make_cfg


def texture(rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """A smooth grey-brown texture (BGR uint8)."""
    noise = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 3)
    grey = 120 + 25 * noise / (noise.std() + 1e-6)
    return np.clip(np.stack([grey * 0.9, grey, grey * 1.1], axis=2), 0, 255).astype(np.uint8)


def with_blob(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The image with a round blob drawn on it, and the blob's mask."""
    out, mask = image.copy(), np.zeros(image.shape[:2], np.uint8)
    h, w = mask.shape
    centre = (int(rng.integers(16, w - 16)), int(rng.integers(16, h - 16)))
    radius = int(rng.integers(6, 10))
    colour = (20, 20, 20) if rng.random() < 0.5 else (240, 240, 240)
    cv2.circle(out, centre, radius, colour, -1)
    cv2.circle(mask, centre, radius, 255, -1)
    return out, mask


def write_folder(root: Path, good: int = 36, defects: int = 14, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    (root / "good").mkdir(parents=True)
    (root / "blob").mkdir()
    for i in range(good):
        cv2.imwrite(str(root / "good" / f"g{i:03d}.jpg"), texture(rng), [cv2.IMWRITE_JPEG_QUALITY, 95])
    for i in range(defects):
        image, mask = with_blob(texture(rng), rng)
        cv2.imwrite(str(root / "blob" / f"b{i:03d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(root / "blob" / f"b{i:03d}.png"), mask)
    return root


def overrides(out: Path, source: Path) -> list[str]:
    return [
        "+experiment=anomaly",
        f"paths.output_dir={out}",
        f"data.cache_dir={out / 'cache'}",
        f"data.source={source}",
        "data.glob=*.jpg",
        "data.image_size=64",
        "data.progress=false",
        "model.pretrained=false",
        "trainer.accelerator=cpu",
        "anomaly.layers=[2,4]",  # stride 4 and 8: the blobs are a few pixels across at 64 px
        "anomaly.coreset_size=200",
        "anomaly.blur_sigma=1.0",
        "export.latency_runs=2",
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("anomaly")
    source = write_folder(root / "data")
    return run(make_cfg(overrides(root / "run", source)))


def test_config_composes_and_dispatches_to_anomaly_mode(tmp_path):
    cfg = make_cfg(overrides(tmp_path, tmp_path))
    assert cfg.anomaly.layers == [2, 4] and cfg.data.augment == [] and cfg.data.orient == "landscape"
    assert "anomaly" not in make_cfg(["+experiment=smoke"])


def test_fits_on_good_only_and_writes_a_valid_anomaly_card(trained):
    assert trained["split"]["fit_good"] > 0
    assert trained["anomaly"]["trained_on"] == ["good"]
    session = ort.InferenceSession(trained["paths"]["model"], providers=["CPUExecutionProvider"])
    card = card_from_metadata(session.get_modelmeta().custom_metadata_map, "model")
    assert card.task == "anomaly" and card.extra_outputs == {"anomaly_map": "anomaly_map"}
    settings = AnomalySettings.from_dict(card.anomaly)
    assert settings.image.min < settings.image.max
    assert {o.name for o in session.get_outputs()} == {"score", "anomaly_map"}
    assert json.loads(Path(trained["paths"]["metrics"]).read_text())["model"]["macs"] < 0.5e9
    assert trained["parity"]["max_abs_diff_score"] <= 1e-3 * trained["parity"]["scale"]


def test_exported_score_separates_fresh_defects_and_its_peak_finds_them(trained):
    session = ort.InferenceSession(trained["paths"]["model"], providers=["CPUExecutionProvider"])
    card = card_from_metadata(session.get_modelmeta().custom_metadata_map, "model")
    rng = np.random.default_rng(99)  # frames never seen in fitting or threshold choice
    goods = [texture(rng) for _ in range(12)]
    blobs = [with_blob(texture(rng), rng) for _ in range(12)]
    batch = np.stack([preprocess(img, card.input) for img in goods + [b for b, _ in blobs]])
    score, amap = session.run(["score", "anomaly_map"], {card.input.tensor_name: batch})
    good_scores, blob_scores = score[:12], score[12:]
    pairs = (blob_scores[:, None] > good_scores[None, :]).mean()
    assert pairs >= 0.9, f"AUROC {pairs:.2f}: goods {np.round(good_scores, 2)}, blobs {np.round(blob_scores, 2)}"
    assert amap.shape == (24, 1, card.input.height, card.input.width)
    hits = 0
    for m, (_, mask) in zip(amap[12:, 0], blobs, strict=True):
        y, x = np.unravel_index(int(np.argmax(m)), m.shape)
        frame_mask = cv2.resize(mask, (card.input.width, card.input.height), interpolation=cv2.INTER_NEAREST)
        hits += bool(cv2.dilate(frame_mask, np.ones((9, 9), np.uint8))[y, x])
    assert hits >= 9, f"the map's peak lies on the blob in {hits} of 12 defect frames"


def test_anomaly_card_without_settings_or_with_bad_ones_is_refused():
    base = {"method": "patchcore", "trained_on": ["good"], "image": {"threshold": 1, "min": 0, "max": 2}}
    with pytest.raises(SchemaError, match=r"anomaly\.pixel"):
        AnomalySettings.from_dict(base)
    with pytest.raises(SchemaError, match=r"anomaly\.pixel\.max"):
        AnomalySettings.from_dict({**base, "pixel": {"threshold": 1, "min": 2, "max": 2}})


def test_a_schema_without_good_labels_is_a_data_error(tmp_path):
    from desktop_trainer.data.samples import DataError

    root = write_folder(tmp_path / "data", good=6, defects=6)
    (root / "good").rename(root / "dent")
    with pytest.raises(DataError, match="non-defect"):
        run_anomaly(make_cfg(overrides(tmp_path / "run", root)))
