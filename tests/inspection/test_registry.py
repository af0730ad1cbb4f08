"""Model registry, golden-set scoring, shadow mode and the promotion policy, with real ORT sessions and a real store.

The golden set is real captures in the store whose groups fall on the test side of the stable split;
the models are colour classifiers whose quality on it is known (tests/helpers/ranked_models.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest

from rdk_agent.inspection import golden_eval
from rdk_agent.inspection.inspector import Inspector
from rdk_agent.inspection.model_manager import ModelManager, PromotionError, RollbackError, UnknownVersion
from rdk_agent.inspection.onnx_model import OnnxClassifier
from rdk_agent.inspection.registry import ModelRegistry
from rdk_agent.inspection.review import ReviewQueue
from rdk_agent.inspection.settings import InspectionSettings
from rdk_agent.inspection.shadow import ShadowRunner
from rdk_agent.storage import CaptureStore
from rdk_agent.telemetry import Telemetry
from tests.helpers import ranked_models as rm

BASE = {"poll_interval_s": 0.05, "intra_op_threads": 1, "golden_check_s": 0.1, "rules": "on_fallback"}
BASE |= {"confidence_threshold": 0.0, "review_threshold": 0.0}  # the model decides; no low-confidence review


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wait_until(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in time")
        time.sleep(0.02)
    return value


class Station:
    """A store with a golden set, a model manager, an inspector and a review queue, as the agent wires them."""

    def __init__(self, root: Path, **settings) -> None:
        self.root = root
        self.settings = InspectionSettings(**{**BASE, **settings})
        self.store = CaptureStore(root / "data", rm.SCHEMA)
        self.open()

    def open(self) -> None:
        telemetry = Telemetry()
        self.models = ModelManager(
            self.root / "models", rm.SCHEMA, self.settings, telemetry, self.root / "data" / "model_registry", self.store
        )
        self.inspector = Inspector(self.models, None, self.settings, telemetry)
        self.review = ReviewQueue(self.store, self.settings, telemetry, self.models.shadow)
        self.models.start()

    def close(self) -> None:
        self.models.stop()
        self.inspector.close()

    def restart(self) -> None:
        self.close()
        self.open()

    def version(self, data: bytes) -> dict:
        return self.models.version(sha(data))

    def judged(self, data: bytes, timeout: float = 15.0) -> dict:
        """Wait until the version of ``data`` has a verdict."""
        return wait_until(lambda: self.peek(data, "verdict"), timeout, f"verdict of {sha(data)[:12]}")

    def peek(self, data: bytes, key: str):
        """A field of the version of ``data``, None while the version is not there yet."""
        version = self.models.registry.get(sha(data))
        return version[key] if version is not None else None

    def inspect(self, frames: int, seed: int = 1) -> None:
        """Inspect ``frames`` frames (all three classes in turn) as the API does: inspect, then offer."""
        rng = np.random.default_rng(seed)
        for i in range(frames):
            frame = rm.colour_frame(rm.CLASSES[i % 3], rng)
            result = self.inspector.inspect(frame)
            result["source"] = "upload"
            self.review.offer(result, frame, None, "upload")
            time.sleep(0.01)  # the shadow keeps up; drops are tested apart


@pytest.fixture
def station(tmp_path):
    made: list[Station] = []

    def make(**settings) -> Station:
        s = Station(tmp_path / f"s{len(made)}", **settings)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
        s.store.close()


def test_macro_scores_match_hand_computed_values():
    truth = ["a", "a", "b", "b", "c", "c"]
    predicted = ["a", "b", "b", "b", None, "c"]
    s = golden_eval.macro_scores(truth, predicted)
    # F1: a = 2*1/(2+0+1) = .667, b = 2*2/(4+1+0) = .8, c = 2*1/(2+0+1) = .667
    assert s["accuracy"] == pytest.approx(4 / 6, abs=1e-6)
    assert s["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 2 / 3) / 3, abs=1e-6)
    assert s["per_class_recall"] == {"a": 0.5, "b": 1.0, "c": 0.5}
    assert golden_eval.macro_scores([], [])["macro_f1"] is None


def test_board_scores_each_model_on_the_stores_golden_set(tmp_path):
    store = CaptureStore(tmp_path / "data", rm.SCHEMA)
    try:
        rng = np.random.default_rng(5)
        for group in rm.groups(False, 4):  # off the golden side: never scored
            store.add(rm.colour_frame("spatter", rng), None, "good", "test", group=group)
        rm.fill_golden(store, per_class=4)
        samples = store.golden_samples()
        assert len(samples) == 12
        models = {q: OnnxClassifier(rm.ranked_model_bytes(q), rm.SCHEMA, 1) for q in rm.QUALITIES}
        scores = golden_eval.score(models, samples, store.golden_signature())
    finally:
        store.close()
    assert scores is not None
    assert (scores["perfect"]["accuracy"], scores["perfect"]["macro_f1"]) == (1.0, 1.0)
    assert scores["mediocre"]["accuracy"] == pytest.approx(2 / 3, abs=1e-6)
    assert scores["mediocre"]["per_class_recall"] == {"good": 1.0, "porosity": 1.0, "spatter": 0.0}
    assert scores["permuted"]["accuracy"] == 0.0 and scores["permuted"]["macro_f1"] == 0.0
    assert {s["n"] for s in scores.values()} == {12}


def test_first_promoted_worse_refused_better_promoted_after_shadow(station):
    s = station(shadow_frames=6)
    rm.fill_golden(s.store, per_class=3)
    first = rm.deploy(s.models.models_dir, "mediocre")
    verdict = s.judged(first)
    assert verdict["decision"] == "promoted" and "first model" in verdict["reason"]
    assert s.models.active.classifier.sha256 == sha(first) and s.models.state() == "active"
    assert s.version(first)["golden"]["accuracy"] == pytest.approx(2 / 3, abs=1e-6)

    worse = rm.deploy(s.models.models_dir, "permuted")
    verdict = s.judged(worse)
    assert verdict["decision"] == "refused" and "worse on the golden set" in verdict["reason"]
    assert verdict["challenger"]["macro_f1"] == 0.0 and verdict["champion"]["macro_f1"] > 0.5
    assert verdict["champion"]["sha256"] == sha(first)
    assert s.version(worse)["state"] == "refused" and not s.models.registry.file(sha(worse)).exists()
    assert s.models.active.classifier.sha256 == sha(first) and s.models.state() == "serving_previous"

    better = rm.deploy(s.models.models_dir, "perfect")
    wait_until(lambda: "in shadow" in (s.peek(better, "reason") or ""), what="shadow")
    assert s.models.state() == "challenger" and s.version(better)["verdict"] is None
    s.inspect(9)
    verdict = s.judged(better)
    assert verdict["decision"] == "promoted" and "shadow frames" in verdict["reason"], verdict
    assert (verdict["challenger"]["macro_f1"], verdict["champion"]["macro_f1"]) == (1.0, pytest.approx(0.555556))
    assert s.models.active.classifier.sha256 == sha(better) and s.models.state() == "active"
    shadow = s.version(better)["shadow"]
    assert shadow["frames"] >= 6 and shadow["dropped"] == 0
    # mediocre and perfect disagree on the spatter frames only: those went to the review queue
    assert shadow["disagreements"] == shadow["review_queued"] > 0
    queued, _ = s.store.page(unlabelled=True)
    assert {c.meta["review"]["reason"] for c in queued} == {"shadow_disagreement"}
    assert {c.meta["shadow"]["challenger"]["label"] for c in queued} == {"spatter"}
    states = {v["sha256"]: v["state"] for v in s.models.registry.listing()}
    assert states == {sha(first): "retired", sha(worse): "refused", sha(better): "champion"}


def test_operator_labels_hold_back_a_challenger_that_disagrees_with_them(station):
    s = station(shadow_frames=6)
    rm.fill_golden(s.store, per_class=2)
    champion = rm.deploy(s.models.models_dir, "mediocre")
    s.judged(champion)
    challenger = rm.deploy(s.models.models_dir, "perfect")
    wait_until(lambda: "in shadow" in (s.peek(challenger, "reason") or ""), what="shadow")
    s.inspect(3)  # one disagreement (the spatter frame), fewer frames than the shadow needs
    wait_until(lambda: s.version(challenger)["shadow"]["review_queued"] == 1, what="disagreement queued")
    (capture,), _ = s.store.page(unlabelled=True)
    s.store.relabel(capture.id, capture.meta["shadow"]["champion"]["label"])  # the operator sides with the champion
    s.inspect(3, seed=2)
    verdict = s.judged(challenger)
    assert verdict["decision"] == "waiting" and "worse agreement with operator labels" in verdict["reason"]
    shadow = s.version(challenger)["shadow"]
    assert (shadow["operator_labels"], shadow["champion_agreement"], shadow["challenger_agreement"]) == (1, 1.0, 0.0)
    assert s.models.active.classifier.sha256 == sha(champion)


def test_manual_promotion_waits_then_operator_promotes_and_rolls_back(station):
    s = station(promotion="manual", shadow_frames=0)
    rm.fill_golden(s.store, per_class=2)
    first = rm.deploy(s.models.models_dir, "mediocre")
    assert s.judged(first)["decision"] == "promoted"  # a board with no champion takes its first model
    better = rm.deploy(s.models.models_dir, "perfect")
    verdict = s.judged(better)
    assert verdict["decision"] == "waiting" and "manual" in verdict["reason"]
    assert s.models.active.classifier.sha256 == sha(first)

    with pytest.raises(UnknownVersion):
        s.models.promote("0" * 64)
    with pytest.raises(PromotionError):
        s.models.promote(sha(first))  # already the champion
    s.models.promote(sha(better))
    assert s.models.active.classifier.sha256 == sha(better) and s.models.active.source == "operator"
    assert s.version(better)["verdict"]["reason"] == "promoted by the operator"
    assert s.version(first)["state"] == "retired"

    s.models.rollback()
    assert s.models.active.classifier.sha256 == sha(first) and s.version(better)["state"] == "retired"
    assert sha((s.models.models_dir / "model.onnx").read_bytes()) == sha(first)
    with pytest.raises(RollbackError):
        s.models.rollback()  # the champion order walked back to its start
    s.models.rollback(sha(better))  # any kept version
    assert s.models.active.classifier.sha256 == sha(better)


def test_immediate_promotion_serves_every_checked_model_and_still_scores_it(station):
    s = station(promotion="immediate")
    rm.fill_golden(s.store, per_class=1)
    s.judged(rm.deploy(s.models.models_dir, "perfect"))
    worse = rm.deploy(s.models.models_dir, "permuted")
    verdict = s.judged(worse)
    assert verdict["decision"] == "promoted" and "immediate" in verdict["reason"]
    assert s.models.active.classifier.sha256 == sha(worse)
    assert wait_until(lambda: s.version(worse)["golden"])["accuracy"] == 0.0, "scored and shown, not a gate"


def test_golden_set_change_rescores_the_challenger(station):
    s = station(promotion="manual", shadow_frames=0)
    rm.fill_golden(s.store, per_class=1)
    s.judged(rm.deploy(s.models.models_dir, "mediocre"))
    challenger = rm.deploy(s.models.models_dir, "perfect")
    s.judged(challenger)
    assert s.version(challenger)["golden"]["n"] == 3
    rm.fill_golden(s.store, per_class=2, seed=9)
    golden = wait_until(lambda: s.version(challenger)["golden"]["n"] == 9 and s.version(challenger)["golden"])
    assert golden["signature"] == s.store.golden_signature()
    assert s.models.status()["champion"]["golden"]["n"] == 9, "the champion is scored on the same set"


def test_every_state_survives_a_restart_and_a_corrupt_registry_is_recovered(station):
    s = station(promotion="manual", shadow_frames=0)
    rm.fill_golden(s.store, per_class=2)
    first = rm.deploy(s.models.models_dir, "mediocre")
    s.judged(first)
    worse = rm.deploy(s.models.models_dir, "permuted")
    s.judged(worse)
    waiting = rm.deploy(s.models.models_dir, "perfect")
    s.judged(waiting)
    before = {v["sha256"]: (v["state"], v["verdict"]["decision"]) for v in s.models.registry.listing()}
    s.restart()
    after = {v["sha256"]: (v["state"], v["verdict"]["decision"]) for v in s.models.registry.listing()}
    assert (
        after
        == before
        == {
            sha(first): ("champion", "promoted"),
            sha(worse): ("refused", "refused"),
            sha(waiting): ("challenger", "waiting"),
        }
    )
    assert s.models.active.classifier.sha256 == sha(first) and s.models.active.source == "history"
    assert s.models.state() == "challenger"

    s.close()
    registry_file = s.root / "data" / "model_registry" / "registry.json"
    registry_file.write_text('{"format": "rdk-model-registry", "versions": {"trunc', encoding="utf-8")
    s.open()
    states = {v["sha256"]: v["state"] for v in s.models.registry.listing()}
    assert set(states) == {sha(first), sha(waiting)}, "the kept files come back; the refused one kept no file"
    assert list(registry_file.parent.glob("registry.corrupt-*.json")), "the unreadable file is set aside"
    # no champion survived: the models dir's file is judged as the first model again
    assert s.models.active is not None and s.models.active.classifier.sha256 == sha(waiting)


def test_pruning_keeps_the_champion_and_the_previous_champion(tmp_path):
    registry = ModelRegistry(tmp_path / "reg", keep=2)
    card = {"name": "m"}
    shas = [f"{i:064x}" for i in range(5)]
    for i, s in enumerate(shas):
        registry.arrive(s, b"model %d" % i, card, "rsync")
        if i < 2:
            registry.set_champion(s, "test")
        else:
            registry.versions[s]["state"] = "retired"
        time.sleep(0.002)
    registry.arrive(f"{9:064x}", b"new", card, "rsync")  # a challenger: prunes on the next change
    registry.set_champion(shas[1], "again")
    kept = {v["sha256"] for v in registry.listing()}
    # the 2 newest (the challenger and shas[4]) plus the champion and the previous champion, however old
    assert kept == {f"{9:064x}", shas[4], shas[1], shas[0]}
    assert {p.stem for p in (tmp_path / "reg").glob("*.onnx")} == kept
    assert json.loads((tmp_path / "reg" / "registry.json").read_text())["champions"] == [shas[0], shas[1]]


def test_shadow_queue_drops_when_full_and_counts_it(tmp_path):
    registry = ModelRegistry(tmp_path / "reg")
    runner = ShadowRunner(registry, queue_size=1, review_max=0)  # the worker is not started: nothing drains
    challenger = registry.arrive("c" * 64, b"c", {"name": "c"}, "rsync")
    classifier = OnnxClassifier(rm.ranked_model_bytes("perfect"), rm.SCHEMA, 1)
    runner.attach("c" * 64, "a" * 64, classifier)
    result = {"onnx": {"label": "good", "confidence": 0.9}, "model": {"sha256": "a" * 64}}
    frame = rm.colour_frame("good", np.random.default_rng(0))
    assert runner.offer(result, frame, None, None) is True
    assert runner.offer(result, frame, None, None) is False
    assert runner.offer({**result, "model": {"sha256": "b" * 64}}, frame, None, None) is False  # not the champion
    assert challenger["shadow"]["dropped"] == 1


def test_model_api_versions_promote_rollback_and_metrics(agent_app):
    agent = agent_app(inspection={**BASE, "promotion": "manual", "shadow_frames": 0})
    c = agent.client
    rm.fill_golden(agent.app.extensions["rdk"].store, per_class=2)
    first = rm.deploy(agent.models_dir, "mediocre")
    wait_until(lambda: (c.get(agent.api("model"), headers=agent.auth).json["champion"] or {}).get("verdict"))
    second = rm.deploy(agent.models_dir, "perfect")
    status = wait_until(
        lambda: (
            (s := c.get(agent.api("model"), headers=agent.auth).json)["challenger"] and s["challenger"]["verdict"] and s
        )
    )
    assert status["state"] == "challenger" and status["active"]["sha256"] == sha(first)
    assert status["champion"]["sha256"] == sha(first) and status["challenger"]["sha256"] == sha(second)
    assert status["challenger"]["verdict"]["decision"] == "waiting"
    assert status["settings"]["promotion"] == "manual"

    versions = c.get(agent.api("models"), headers=agent.auth).json["versions"]
    assert [v["sha256"] for v in versions] == [sha(second), sha(first)], "newest first"
    one = c.get(agent.api(f"models/{sha(second)}"), headers=agent.auth).json
    assert set(one) == {
        "sha256",
        "name",
        "state",
        "reason",
        "arrived_at",
        "source",
        "card",
        "golden",
        "shadow",
        "verdict",
    }
    assert one["golden"]["macro_f1"] == 1.0 and one["card"]["labels"][:3] == rm.CLASSES
    assert set(one["shadow"]) >= {"frames", "disagreements", "operator_labels", "champion_agreement", "dropped"}

    def error(r, status):
        assert r.status_code == status, r.text
        return r.json["error"]["code"]

    assert error(c.get(agent.api("models/" + "0" * 64), headers=agent.auth), 404) == "not_found"
    assert error(c.get(agent.api("models/nothex"), headers=agent.auth), 400) == "bad_sha256"
    assert error(c.post(agent.api("model/promote"), json={"sha256": "0" * 64}, headers=agent.auth), 404) == "not_found"
    assert error(c.post(agent.api("model/promote"), json={}, headers=agent.auth), 400) == "missing_field"
    assert error(c.post(agent.api("model/promote"), json={"sha256": sha(first)}, headers=agent.auth), 409)
    assert error(c.post(agent.api("model/promote"), json={"sha256": sha(second)}), 401)

    metrics = c.get("/metrics").get_data(as_text=True)
    assert 'rdk_model_golden_macro_f1{model="challenger"} 1' in metrics
    assert 'rdk_model_golden_accuracy{model="champion"} 0.666667' in metrics
    assert 'rdk_model_shadow_frames{model="challenger"} 0' in metrics

    r = c.post(agent.api("model/promote"), json={"sha256": sha(second)}, headers=agent.auth)
    assert r.status_code == 200 and r.json["active"]["sha256"] == sha(second) and r.json["challenger"] is None
    r = c.post(agent.api("model/rollback"), json={"sha256": sha(first)}, headers=agent.auth)
    assert r.status_code == 200 and r.json["active"]["sha256"] == sha(first) and r.json["state"] == "active"
    assert error(c.post(agent.api("model/rollback"), json={"sha256": sha(first)}, headers=agent.auth), 409)
    # no body: the previous champion; the version rolled back from is not one, so none is left
    assert "no previous good model" in c.post(agent.api("model/rollback"), headers=agent.auth).json["error"]["message"]


def test_models_kept_by_the_former_history_are_taken_over(station, tmp_path):
    """A board upgraded from the models-dir history keeps serving its model, and the others stay kept."""
    history = tmp_path / "s0" / "models" / ".history"
    history.mkdir(parents=True)
    older, newer = rm.ranked_model_bytes("mediocre"), rm.ranked_model_bytes("perfect")
    for data in (older, newer):
        (history / f"{sha(data)}.onnx").write_bytes(data)
    entries = [{"sha256": sha(d), "name": "m", "activated_at": 1.0} for d in (older, newer)]
    (history / "index.json").write_text(json.dumps({"models": entries}), encoding="utf-8")
    (history.parent / "model.onnx").write_bytes(newer)
    s = station()
    assert s.models.active.classifier.sha256 == sha(newer) and s.models.state() == "active"
    assert {v["sha256"]: v["state"] for v in s.models.registry.listing()} == {
        sha(older): "retired",
        sha(newer): "champion",
    }
    assert s.models.registry.previous_champion() == sha(older)
    assert (history / "index.imported.json").exists() and not (history / "index.json").exists()
