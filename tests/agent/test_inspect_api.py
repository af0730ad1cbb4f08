"""POST /api/v1/inspect, GET /api/v1/model, rollback, review queue and hot swap, in process.

The model watcher runs as in production (polling every 0.1 s here), so a model written into the
models dir is picked up by the app while the test client keeps inspecting.
"""

from __future__ import annotations

import hashlib
import threading
import time

import cv2
import numpy as np

from tests.agent_app import AgentApp, multipart
from tests.helpers import onnx_models as om

FAST = {"poll_interval_s": 0.1, "intra_op_threads": 1, "shadow_frames": 0}  # hot-swap mechanics: promote at once


def png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def model_status(agent: AgentApp) -> dict:
    r = agent.client.get(agent.api("model"), headers=agent.auth)
    assert r.status_code == 200
    return r.json


def wait_model(agent: AgentApp, predicate, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    status = model_status(agent)
    while not predicate(status):
        if time.monotonic() > deadline:
            raise AssertionError(f"model state not reached: {status}")
        time.sleep(0.05)
        status = model_status(agent)
    return status


def deploy(agent: AgentApp, writer, **kwargs) -> str:
    """Write a model into the agent's models dir the way rsync does; its sha256."""
    path = writer(agent.models_dir / "model.onnx", **kwargs)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def inspect(agent: AgentApp, files: dict | None = None, **kwargs):
    if files is not None:
        kwargs["data"] = multipart(files)
    else:
        kwargs.setdefault("json", {})
    return agent.client.post(agent.api("inspect"), headers=agent.auth, **kwargs)


def test_without_model_rules_decide_and_bad_input_is_refused(agent_app):
    agent = agent_app(inspection=FAST, max_upload_bytes=1_000_000)
    status = model_status(agent)
    assert status["state"] == "no_model" and status["active"] is None and status["last_error"] is None
    assert status["settings"]["rules"] == "always"  # the default inspection.rules mode is shown

    r = inspect(agent)
    assert r.status_code == 200
    body = r.json
    assert (body["engine"], body["fallback_reason"], body["source"]) == ("rules", "no_model", "camera")
    assert body["rules"]["measures"] and body["latency_ms"]["total"] > 0

    rgb = np.full((120, 160, 3), 90, dtype=np.uint8)
    depth = np.full((120, 160), 400, dtype=np.uint16)
    r = inspect(agent, files={"image": ("f.png", png(rgb)), "depth": ("d.png", png(depth))})
    assert r.status_code == 200 and r.json["source"] == "upload" and r.json["latency_ms"]["decode"] > 0

    def error(resp, status: int) -> str:
        assert resp.status_code == status, resp.text
        return resp.json["error"]["code"]

    assert error(inspect(agent, files={"image": ("x.png", b"not an image at all")}), 400)
    assert error(inspect(agent, files={"image": ("x.png", png(rgb)), "depth": ("d.png", png(rgb))}), 400)
    small_depth = png(np.zeros((10, 10), dtype=np.uint16))
    mismatched = {"image": ("x.png", png(rgb)), "depth": ("d.png", small_depth)}
    assert error(inspect(agent, files=mismatched), 400) == "bad_depth"
    assert error(inspect(agent, files={"depth": ("d.png", png(depth))}), 400) == "missing_field"
    assert error(inspect(agent, files={"image": ("x.png", png(rgb)), "label": ("l", b"good")}), 400) == "unknown_field"
    assert error(inspect(agent, files={"image": ("big.png", b"\x89PNG" + b"0" * 1_200_000)}), 413)
    assert error(inspect(agent, json={"unexpected": 1}), 400) == "unknown_field"
    r = agent.client.post(agent.api("inspect"), data=b"raw", content_type="image/png", headers=agent.auth)
    assert error(r, 415)
    assert error(agent.client.post(agent.api("inspect"), json={}), 401)
    assert error(agent.client.get(agent.api("inspect/latest"), headers=agent.auth), 404)
    assert error(agent.client.post(agent.api("model/rollback"), headers=agent.auth), 409) == "conflict"


def test_hot_swap_under_concurrent_clients_then_broken_file_then_rollback(agent_app):
    agent = agent_app(inspection=FAST)
    first = deploy(agent, om.write_valid, dominant="good")
    status = wait_model(agent, lambda s: s["state"] == "active")
    assert status["active"]["sha256"] == first and status["active"]["card"]["labels"][0] == "good"
    assert status["active"]["load_ms"] > 0 and status["active"]["loaded_at"] > 0

    stop = threading.Event()
    results: list[tuple[int, str | None, str | None]] = []
    lock = threading.Lock()

    def client() -> None:
        own = agent.app.test_client()  # one client per thread, one app for all, as under waitress
        while not stop.is_set():
            try:
                r = own.post(agent.api("inspect"), json={}, headers=agent.auth)
                item = (r.status_code, r.json.get("engine"), (r.json.get("model") or {}).get("sha256"))
            except Exception as exc:  # any failure is a result to report, not a dead thread
                item = (0, repr(exc), None)
            with lock:
                results.append(item)

    clients = [threading.Thread(target=client) for _ in range(8)]
    for t in clients:
        t.start()
    try:
        time.sleep(0.5)
        second = deploy(agent, om.write_valid, dominant="spatter")
        wait_model(agent, lambda s: (s["active"] or {}).get("sha256") == second)
        time.sleep(0.5)
        broken = deploy(agent, om.write_truncated)
        wait_model(agent, lambda s: s["last_error"] is not None)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in clients:
            t.join()

    failures = [r for r in results if r[0] != 200 or r[1] != "onnx"]
    assert not failures, f"{len(failures)} of {len(results)} requests failed during swaps: {failures[:5]}"
    served = {r[2] for r in results}
    status = model_status(agent)
    assert {first, second} <= served and broken not in served
    assert status["state"] == "serving_previous" and status["active"]["sha256"] == second
    assert status["last_error"]["file_sha256"] == broken and status["last_error"]["reason"] == "load_failed"
    assert status["counters"]["engine"]["onnx"] >= len(results)
    assert inspect(agent).json["label"] == "spatter"

    r = agent.client.post(agent.api("model/rollback"), headers=agent.auth)
    assert r.status_code == 200, r.text
    assert r.json["active"]["sha256"] == first and r.json["state"] == "active"
    assert hashlib.sha256((agent.models_dir / "model.onnx").read_bytes()).hexdigest() == first
    assert inspect(agent).json["label"] == "good"

    agent.restart()
    assert model_status(agent)["active"]["sha256"] == first, "rollback survives a restart"


def test_low_confidence_frames_go_to_the_review_queue(agent_app):
    agent = agent_app(inspection={**FAST, "review_threshold": 0.7})
    deploy(agent, om.write_low_confidence)
    wait_model(agent, lambda s: s["state"] == "active")
    body = inspect(agent).json
    assert (body["engine"], body["fallback_reason"]) == ("rules", "low_confidence")
    capture_id = body["review_capture_id"]
    assert capture_id

    r = agent.client.get(agent.api(f"captures/{capture_id}"), headers=agent.auth)
    assert r.status_code == 200
    record = r.json
    assert record["label"] is None and record["source"] == "review"
    assert record["meta"]["inspection"]["fallback_reason"] == "low_confidence"
    assert record["meta"]["inspection"]["onnx"]["confidence"] < 0.7
    assert record["meta"]["review"]["threshold"] == 0.7
    listed = agent.client.get(agent.api("captures"), query_string={"unlabelled": "true"}, headers=agent.auth)
    assert capture_id in [c["id"] for c in listed.json["items"]]

    deploy(agent, om.write_valid, margin=9.0)
    wait_model(agent, lambda s: s["active"]["card"]["name"] and s["counters"]["reloads"] == 2)
    assert inspect(agent).json["review_capture_id"] is None, "confident frames stay out of the queue"
    assert model_status(agent)["counters"]["review_queued"] == 1


def test_model_api_shows_the_thresholds_in_force_and_their_sources(agent_app):
    agent = agent_app(inspection={**FAST, "review_threshold": 0.97})
    status = model_status(agent)
    assert status["thresholds"]["source"] == {"confidence": "default", "review": "station"}
    assert (status["settings"]["confidence_threshold"], status["settings"]["review_threshold"]) == (0.6, 0.97)

    deploy(agent, om.write_valid, margin=9.0, temperature=0.8, confidence_threshold=0.9, review_threshold=0.95)
    status = wait_model(agent, lambda s: s["state"] == "active")
    assert status["active"]["card"]["temperature"] == 0.8
    assert status["thresholds"] == {
        "confidence": 0.9,
        "review": 0.97,
        "source": {"confidence": "card", "review": "station"},
        "station": {"confidence": None, "review": 0.97},
        "card": {"confidence": 0.9, "review": 0.95},
    }
    assert (status["settings"]["confidence_threshold"], status["settings"]["review_threshold"]) == (0.9, 0.97)
    body = inspect(agent).json
    assert body["engine"] == "onnx" and body["thresholds"]["source"]["confidence"] == "card"


def test_live_loop_publishes_latest_result(agent_app):
    agent = agent_app(inspection={**FAST, "loop": True, "loop_interval_s": 0.2})
    deadline = time.monotonic() + 15
    while True:
        r = agent.client.get(agent.api("inspect/latest"), headers=agent.auth)
        if r.status_code == 200:
            break
        assert time.monotonic() < deadline, r.text
        time.sleep(0.05)
    first = r.json
    assert first["source"] == "loop" and first["fallback_reason"] == "no_model"
    time.sleep(0.6)
    assert agent.client.get(agent.api("inspect/latest"), headers=agent.auth).json["timestamp"] > first["timestamp"]
