"""Bad models deployed one after another into a real agent's models dir, as rsync would drop them.

tests/inspection covers each refusal and fallback against the Python classes; this test goes end to
end: GET /api/v1/model must name the refusal, POST /api/v1/inspect must fall back with the right
reason (or keep serving the previous good model), and the agent must keep serving throughout.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from tests.helpers import onnx_models as om
from tests.reliability.support import wait_until

pytestmark = pytest.mark.reliability

REFUSED = [  # (writer, fallback reason, refusal code)
    (om.write_truncated, "load_failed", "not_onnx"),
    (lambda p: om.write_random_bytes(p, seed=5), "load_failed", "not_onnx"),
    (om.write_no_card, "load_failed", "no_card"),
    (om.write_invalid_card, "load_failed", "invalid_card"),
    (om.write_wrong_schema_hash, "schema_mismatch", "schema_mismatch"),
    (om.write_wrong_input_shape, "load_failed", "input_mismatch"),
    (om.write_nan_output, "load_failed", "smoke_failed"),
]


def _dark_png() -> bytes:
    return cv2.imencode(".png", np.full((48, 64, 3), 12, np.uint8))[1].tobytes()


def _model(agent) -> dict:
    r = requests.get(agent.api("model"), headers=agent.auth, timeout=30)
    assert r.status_code == 200
    return r.json()


def _deploy(agent, writer) -> str:
    """Write a model file as rsync does and wait until the agent has judged it; its sha256."""
    path = writer(Path(agent.models_dir) / "model.onnx")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()

    def judged() -> bool:
        m = _model(agent)
        if m["loading"] or m["file"]["sha256"] != sha:
            return False
        return (m["active"] or {}).get("sha256") == sha or (m["last_error"] or {}).get("file_sha256") == sha

    wait_until(judged, timeout=60, interval=0.1)
    return sha


def _inspect(agent, image: bytes | None = None) -> dict:
    if image is None:
        r = requests.post(agent.api("inspect"), headers=agent.auth, timeout=60)
    else:
        r = requests.post(agent.api("inspect"), files={"image": ("f.png", image)}, headers=agent.auth, timeout=60)
    assert r.status_code == 200, r.text[:300]
    return r.json()


def _serving(agent) -> None:
    assert requests.get(f"{agent.url}/healthz", timeout=10).ok
    assert requests.get(agent.api("status"), headers=agent.auth, timeout=30).ok
    assert (
        requests.post(agent.api("captures"), json={"label": "good"}, headers=agent.auth, timeout=30).status_code == 201
    )


def test_each_bad_model_falls_back_with_its_reason_and_the_agent_keeps_serving(agent_process):
    settings = {"poll_interval_s": 0.1, "timeout_ms": 150, "intra_op_threads": 1, "max_consecutive_timeouts": 50}
    settings["promotion"] = "immediate"  # each sound model serves once checked, as before the model registry
    agent = agent_process(config={"inspection": settings})
    tried = 0
    # no good model yet: each refusal leaves the rules in charge, with the refusal's reason
    for writer, reason, code in REFUSED:
        sha = _deploy(agent, writer)
        model = _model(agent)
        assert model["state"] == "failed" and model["active"] is None, model
        assert (model["last_error"]["reason"], model["last_error"]["code"]) == (reason, code), model["last_error"]
        assert model["last_error"]["file_sha256"] == sha and model["last_error"]["message"]
        result = _inspect(agent)
        assert (result["engine"], result["fallback_reason"]) == ("rules", reason), result
        _serving(agent)
        tried += 1

    # a model that loads but gives NaN on dark frames: inference_error on those, onnx on the others
    _deploy(agent, om.write_nan_on_dark)
    assert _model(agent)["state"] == "active"
    dark = _inspect(agent, _dark_png())
    assert (dark["engine"], dark["fallback_reason"]) == ("rules", "inference_error") and "not finite" in dark["error"]
    # a model slower than the 150 ms deadline: stopped, rules decide with reason timeout
    _deploy(agent, om.write_slow)
    slow = _inspect(agent)
    assert (slow["engine"], slow["fallback_reason"]) == ("rules", "timeout"), slow
    assert slow["latency_ms"]["inference"] == 0.0 and slow["latency_ms"]["total"] < 5000
    # a model that is never sure: low_confidence
    _deploy(agent, om.write_low_confidence)
    unsure = _inspect(agent)
    assert (unsure["engine"], unsure["fallback_reason"]) == ("rules", "low_confidence"), unsure
    _serving(agent)
    tried += 3

    # a good model, then every bad file again: refused, and the good model keeps serving
    good = _deploy(agent, lambda p: om.write_valid(p, dominant="spatter"))
    assert _inspect(agent)["engine"] == "onnx"
    for writer, reason, code in REFUSED:
        _deploy(agent, writer)
        model = _model(agent)
        assert model["state"] == "serving_previous" and model["active"]["sha256"] == good, model
        assert (model["last_error"]["reason"], model["last_error"]["code"]) == (reason, code)
        result = _inspect(agent)
        assert (result["engine"], result["label"], result["model"]["sha256"]) == ("onnx", "spatter", good), result
        tried += 1
    _serving(agent)
    counters = _model(agent)["counters"]
    assert sum(counters["load_failures"].values()) >= 2 * len(REFUSED)
    print(f"\nbad models: {tried} bad model files deployed into a running agent; each refused or fallen back "
          f"with its reason; fallback counters {counters['fallback_reason']}")  # fmt: skip
