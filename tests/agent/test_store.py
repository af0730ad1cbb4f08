"""CaptureStore in-process: metadata normalisation and nothing left behind by a refused capture."""

from __future__ import annotations

import numpy as np
import pytest

from rdk_agent.storage import CaptureStore, StoreLocked, UnknownLabel
from shared_schema import default_weld_schema


@pytest.fixture
def store(tmp_path):
    s = CaptureStore(tmp_path / "data", default_weld_schema())
    yield s
    s.close()


def test_numpy_metadata_is_stored_as_plain_json(store):
    rgb = np.zeros((8, 8, 3), np.uint8)
    meta = {"score": np.float32(0.25), "box": np.array([1, 2, 3]), "n": np.int64(4)}
    rec = store.add(rgb, None, "good", "test", meta=meta)
    assert store.get(rec.id).meta == {"score": 0.25, "box": [1, 2, 3], "n": 4}


def test_refused_captures_leave_nothing(store):
    rgb = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        store.add(rgb, None, "good", "test", meta={"handle": object()})
    with pytest.raises(UnknownLabel, match="known labels: good, porosity"):
        store.add(rgb, None, "cracked", "test")
    with pytest.raises(ValueError, match="depth is 4x4"):
        store.add(rgb, np.zeros((4, 4), np.uint16), "good", "test")
    assert store.page()[1] == 0
    assert not any(store.samples_dir.iterdir()) and not any(store.staging_dir.iterdir())


def test_one_store_per_data_dir(store):
    with pytest.raises(StoreLocked, match="another agent process"):
        CaptureStore(store.data_dir, default_weld_schema())
