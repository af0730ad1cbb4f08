"""ModelManager: watching the models dir, checked swaps, refusals, kept versions and rollback (real files, real ORT).

These run without a golden set and without shadow frames, so every sound model is promoted once it has
been checked: the hot-swap mechanics alone. The champion/challenger policy is tested in test_registry.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest

from rdk_agent.inspection.model_manager import ModelManager, RollbackError
from rdk_agent.inspection.settings import InspectionSettings
from rdk_agent.telemetry import Telemetry
from shared_schema import default_weld_schema
from tests.helpers import onnx_models as om

SCHEMA = default_weld_schema()
SETTINGS = InspectionSettings(poll_interval_s=0.05, intra_op_threads=1, keep_models=3, shadow_frames=0)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def om_frame() -> np.ndarray:
    return np.full((40, 40, 3), 120, dtype=np.uint8)


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


@pytest.fixture
def manager(tmp_path):
    managers = []

    def make(models_dir: Path = tmp_path / "models") -> ModelManager:
        m = ModelManager(models_dir, SCHEMA, SETTINGS, Telemetry())
        m.start()
        managers.append(m)
        return m

    yield make
    for m in managers:
        m.stop()


def test_no_model_then_deploy_then_replace(manager, tmp_path):
    m = manager()
    assert m.active is None and m.state() == "no_model" and m.unavailable_reason() == "no_model"
    first = om.write_valid(m.model_path, dominant="good")
    first_sha = sha(first)
    wait_until(lambda: m.summary()["sha256"] == first_sha)
    assert m.state() == "active" and m.status()["active"]["sha256"] == first_sha
    old = m.active
    second_sha = sha(om.write_valid(m.model_path, dominant="gap"))
    wait_until(lambda: m.summary()["sha256"] == second_sha)
    assert m.active is not old and m.active.classifier.predict(om_frame()).label == "gap"
    assert old.classifier.predict(om_frame()).label == "good"  # a request holding the old model still finishes
    assert m.telemetry.model_reloads.value() == 2


@pytest.mark.parametrize(
    ("writer", "reason", "code"),
    [
        (om.write_truncated, "load_failed", "not_onnx"),
        (om.write_wrong_schema_hash, "schema_mismatch", "schema_mismatch"),
        (om.write_nan_output, "load_failed", "smoke_failed"),
    ],
)
def test_broken_replacement_keeps_previous_serving(manager, writer, reason, code):
    m = manager()
    good_sha = sha(om.write_valid(m.model_path))
    wait_until(lambda: m.summary()["sha256"] == good_sha)
    bad_sha = sha(writer(m.model_path))
    wait_until(lambda: m.last_error is not None)
    assert m.active.classifier.sha256 == good_sha
    assert m.state() == "serving_previous"
    assert m.last_error["file_sha256"] == bad_sha
    assert (m.last_error["reason"], m.last_error["code"]) == (reason, code)
    assert m.telemetry.model_failures.value(code=code) == 1


def test_broken_first_model_leaves_rules_with_the_reason(manager):
    m = manager()
    om.write_wrong_schema_hash(m.model_path)
    wait_until(lambda: m.last_error is not None)
    assert m.active is None and m.state() == "failed" and m.unavailable_reason() == "schema_mismatch"
    m.model_path.unlink()
    wait_until(lambda: m.state() == "no_model")


def test_partial_copy_is_loaded_once_complete(manager):
    """A non-atomic copy (cp) is picked up once the file stops changing."""
    m = manager()
    data = om.valid_model_bytes()
    with open(m.model_path, "wb") as fh:
        fh.write(data[:100])
        fh.flush()
        time.sleep(0.02)
        fh.write(data[100:])
    wait_until(lambda: m.summary()["sha256"] == hashlib.sha256(data).hexdigest())


def test_rollback_walks_back_and_survives_restart(manager, tmp_path):
    m = manager()
    shas = []
    for dominant in ("good", "porosity", "spatter"):
        shas.append(sha(om.write_valid(m.model_path, dominant=dominant)))
        wait_until(lambda: m.summary()["sha256"] == shas[-1])
    assert m.registry.champions == shas
    m.rollback()
    assert m.active.classifier.sha256 == shas[1] and m.active.source == "rollback"
    assert sha(m.model_path) == shas[1], "rollback also restores the deployed file"
    time.sleep(0.2)
    assert m.active.classifier.sha256 == shas[1], "the watcher does not reload the file rollback wrote"
    m.stop()

    restarted = manager(m.models_dir)
    assert restarted.active.classifier.sha256 == shas[1]
    restarted.rollback()
    assert restarted.active.classifier.sha256 == shas[0]
    with pytest.raises(RollbackError):
        restarted.rollback()
    assert restarted.active.classifier.sha256 == shas[0]


def test_history_keeps_only_the_last_few(manager):
    m = manager()
    for margin in (3.0, 4.0, 5.0, 6.0):
        written = sha(om.write_valid(m.model_path, margin=margin))
        wait_until(lambda: m.summary()["sha256"] == written)  # noqa: B023 - called before the next iteration
    versions = m.registry.listing()
    assert len(versions) == SETTINGS.keep_models
    assert [v["state"] for v in versions] == ["champion", "retired", "retired"]
    assert len(list(m.registry.directory.glob("*.onnx"))) == SETTINGS.keep_models


def test_restart_with_refused_file_serves_last_good(manager):
    m = manager()
    good_sha = sha(om.write_valid(m.model_path))
    wait_until(lambda: m.summary()["sha256"] == good_sha)
    m.stop()
    om.write_random_bytes(m.model_path)
    restarted = manager(m.models_dir)
    assert restarted.active is not None and restarted.active.classifier.sha256 == good_sha
    assert restarted.active.source == "history"
    assert restarted.state() == "serving_previous" and restarted.last_error["code"] == "not_onnx"
