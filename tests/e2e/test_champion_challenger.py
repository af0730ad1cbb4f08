"""Champion/challenger against a real agent process, with 8 clients inspecting throughout.

A golden set of uploaded captures (groups on the test side of the stable split); then, as rsync
drops them in the models dir: a first model (promoted), a model trained on shuffled labels (its
outputs permuted: refused, with both golden scores in the verdict), and a better model (challenger,
in shadow). The agent is killed (a power cut) while the better model runs in shadow: every state
comes back, and the shadow finishes and promotes it. No inspect request fails during any promotion.
"""

from __future__ import annotations

import hashlib
import threading
import time

import cv2
import numpy as np
import pytest
import requests

from tests.helpers import ranked_models as rm

SETTINGS = {
    "poll_interval_s": 0.1,
    "intra_op_threads": 1,
    "golden_check_s": 0.2,
    "shadow_frames": 30,
    "shadow_review_max": 10,
    "rules": "on_fallback",
    "confidence_threshold": 0.0,
    "review_threshold": 0.0,
}
GOLDEN_PER_CLASS = 5


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def png(frame: np.ndarray) -> bytes:
    return cv2.imencode(".png", frame)[1].tobytes()


class Clients:
    """8 threads posting uploaded frames to /inspect; ``paused`` stops them for the power cut."""

    def __init__(self, agent, n: int = 8) -> None:
        self.agent = agent
        rng = np.random.default_rng(11)
        self.frames = [png(rm.colour_frame(label, rng)) for label in rm.CLASSES * 3]
        self.stop, self.running = threading.Event(), threading.Event()
        self.lock = threading.Lock()
        self.ok, self.failures = 0, []
        self.models: dict[str, int] = {}
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]

    def _run(self, i: int) -> None:
        session = requests.Session()
        k = i
        while not self.stop.is_set():
            if not self.running.wait(0.05):
                continue
            k += 1
            try:
                r = session.post(
                    self.agent.api("inspect"),
                    files={"image": ("f.png", self.frames[k % len(self.frames)])},
                    headers=self.agent.auth,
                    timeout=30,
                )
                failure = None if r.status_code == 200 else f"HTTP {r.status_code}: {r.text[:200]}"
                model = ((r.json().get("model") or {}).get("sha256") or "none") if failure is None else ""
            except requests.RequestException as exc:
                failure, model = repr(exc), ""
            with self.lock:
                if failure is not None and self.running.is_set():
                    self.failures.append(failure)
                elif failure is None:
                    self.ok += 1
                    self.models[model] = self.models.get(model, 0) + 1


def model_status(agent) -> dict:
    r = requests.get(agent.api("model"), headers=agent.auth, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def version(agent, data: bytes) -> dict | None:
    r = requests.get(agent.api(f"models/{sha(data)}"), headers=agent.auth, timeout=30)
    return r.json() if r.status_code == 200 else None


def wait_for(agent, data: bytes, check, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        v = version(agent, data)
        if v is not None and check(v):
            return v
        assert time.monotonic() < deadline, f"version {sha(data)[:12]} stuck at {v}\n{agent.log()[-3000:]}"
        time.sleep(0.1)


@pytest.mark.server
def test_first_promoted_worse_refused_better_promoted_after_shadow_through_a_power_cut(agent_process):
    agent = agent_process(config={"inspection": SETTINGS})
    rm.upload_golden(agent, GOLDEN_PER_CLASS)
    clients = Clients(agent)
    for t in clients.threads:
        t.start()
    clients.running.set()
    try:
        first = rm.deploy(agent.models_dir, "mediocre")
        v = wait_for(agent, first, lambda v: v["verdict"])
        assert (v["state"], v["verdict"]["decision"]) == ("champion", "promoted")
        assert v["golden"]["n"] == 3 * GOLDEN_PER_CLASS and v["golden"]["accuracy"] == pytest.approx(2 / 3, abs=1e-4)

        worse = rm.deploy(agent.models_dir, "permuted")
        v = wait_for(agent, worse, lambda v: v["verdict"])
        assert (v["state"], v["verdict"]["decision"]) == ("refused", "refused")
        both = v["verdict"]["champion"], v["verdict"]["challenger"]
        assert [(s["sha256"], s["accuracy"]) for s in both] == [
            (sha(first), pytest.approx(2 / 3, abs=1e-4)),
            (sha(worse), 0.0),
        ]
        assert "worse on the golden set" in v["reason"]

        better = rm.deploy(agent.models_dir, "perfect")
        wait_for(agent, better, lambda v: v["shadow"]["frames"] >= 5)

        clients.running.clear()  # a power cut in the middle of the shadow run
        time.sleep(0.3)
        before = {
            x["sha256"]: x["state"] for x in requests.get(agent.api("models"), headers=agent.auth).json()["versions"]
        }
        agent.kill()
        agent.start()
        after = model_status(agent)
        states = {
            x["sha256"]: x["state"] for x in requests.get(agent.api("models"), headers=agent.auth).json()["versions"]
        }
        assert states == before == {sha(first): "champion", sha(worse): "refused", sha(better): "challenger"}
        assert after["active"]["sha256"] == sha(first) and after["challenger"]["golden"]["macro_f1"] == 1.0
        assert after["state"] == "challenger"

        clients.running.set()
        v = wait_for(agent, better, lambda v: v["state"] == "champion")
        assert v["verdict"]["decision"] == "promoted" and v["shadow"]["frames"] >= SETTINGS["shadow_frames"]
        assert (v["verdict"]["challenger"]["macro_f1"], v["verdict"]["champion"]["sha256"]) == (1.0, sha(first))
        assert v["shadow"]["review_queued"] > 0, "mediocre and perfect disagree on spatter frames"
        time.sleep(0.5)
    finally:
        clients.stop.set()
        for t in clients.threads:
            t.join(timeout=30)
    assert not clients.failures, f"{len(clients.failures)} failed inspect requests: {clients.failures[:3]}"
    assert clients.models.get(sha(first), 0) > 0 and clients.models.get(sha(better), 0) > 0
    assert model_status(agent)["active"]["sha256"] == sha(better)
    metrics = requests.get(f"{agent.url}/metrics", timeout=30).text
    assert 'rdk_model_golden_macro_f1{model="champion"} 1' in metrics
