"""ModelCycle: the background thread that scores models on the golden set, runs the shadow and applies the policy.

One thread, woken by an arriving challenger, a champion change, the shadow reaching its frame count,
and every ``golden_check_s``. Each step: score the champion and the challenger on the golden set when
they have no score for its current signature (one pass over the frames, single-threaded sessions of
their own), refresh the shadow's operator-label agreement, then :func:`rdk_agent.inspection.promotion.decide`
and apply the answer: promote (the manager's hot swap), refuse, or wait for the operator. A
challenger runs in shadow once both models are scored and it is neither refused nor promoted.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Protocol

from rdk_agent.inspection import golden_eval
from rdk_agent.inspection.golden_eval import GoldenSource
from rdk_agent.inspection.onnx_model import ModelLoadError, OnnxClassifier
from rdk_agent.inspection.promotion import Decision, decide
from rdk_agent.inspection.registry import card_summary, empty_shadow
from rdk_agent.inspection.shadow import LabelSource, refresh_labels

if TYPE_CHECKING:
    from rdk_agent.inspection.model_manager import ModelManager

log = logging.getLogger(__name__)


class Store(GoldenSource, LabelSource, Protocol):
    """The golden set and the operator labels (``rdk_agent.storage.CaptureStore``)."""


class ModelCycle:
    """Scores, shadows and judges the challenger of ``manager``; ``store`` may be None (no golden set)."""

    def __init__(self, manager: ModelManager, store: Store | None) -> None:
        self.manager = manager
        self.store = store
        self.registry = manager.registry
        self.settings = manager.settings
        self.shadow = manager.shadow
        self.shadow.on_frame = self._shadow_frame
        self._challenger: tuple[str, OnnxClassifier] | None = None
        self._champion_eval: tuple[str, OnnxClassifier] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.steps = 0

    def start(self) -> None:
        """Resume a challenger kept from before a restart and start the thread."""
        self.resume()
        self._thread = threading.Thread(target=self._run, name="model-cycle", daemon=True)
        self._thread.start()

    def resume(self) -> None:
        """Load the registry's challenger for scoring and shadow, unless already loaded."""
        challenger = self.registry.with_state("challenger")
        current = self._challenger
        if challenger is not None and (current is None or current[0] != challenger["sha256"]):
            try:
                data = self.registry.read(challenger["sha256"])
                self._challenger = (challenger["sha256"], OnnxClassifier(data, self.manager.schema, 1, "registry"))
            except (OSError, ModelLoadError) as exc:
                self.registry.refuse(challenger["sha256"], f"cannot be loaded after a restart: {exc}")

    def stop(self) -> None:
        """Stop the thread (a scoring pass in progress is abandoned)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wake(self) -> None:
        """Run a step soon."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # keep judging whatever one step did
                log.exception("model cycle step failed")
            self._wake.wait(self.settings.golden_check_s)
            self._wake.clear()

    # -- events from the manager and the shadow --------------------------------------------------

    def new_challenger(self, sha: str, data: bytes, classifier: OnnxClassifier) -> None:
        """A checked model arrived (caller holds the manager's lock): it replaces any challenger."""
        with self.registry.change():
            former = self.registry.with_state("challenger")
            if former is not None and former["sha256"] != sha:
                former.update(state="retired", reason=f"replaced by the newer challenger {sha[:12]}")
            version = self.registry.arrive(sha, data, card_summary(classifier.card), "rsync")
            version.update(state="challenger", reason="scoring on the golden set", golden=None, verdict=None)
            version.update(shadow=empty_shadow(), error=None)
        self.shadow.detach()
        self._challenger = (sha, classifier)
        log.info("model %s (%s) is the challenger", sha[:12], classifier.card.name)
        self.wake()

    def champion_changed(self, former: str | None) -> None:
        """A new champion serves: the challenger is judged again against it (caller holds the manager's lock)."""
        self.shadow.detach()
        champion = self.registry.with_state("champion")
        if self._challenger is not None and champion is not None and self._challenger[0] == champion["sha256"]:
            self._challenger = None
        challenger = self.registry.with_state("challenger")
        if challenger is not None:
            with self.registry.change():
                challenger.update(reason="judged again against the new champion", verdict=None, shadow=empty_shadow())
        self.wake()

    def _shadow_frame(self) -> None:
        version = self.registry.get(self.shadow.challenger or "")
        if version is not None and version["shadow"]["frames"] == self.settings.shadow_frames:
            self.wake()

    @staticmethod
    def verdict_for(champion: dict | None, challenger: dict, decision: str, reason: str) -> dict:
        """A verdict object with both models' golden scores."""
        return Decision(decision, reason).verdict(champion, challenger)

    # -- one step --------------------------------------------------------------------------------

    def step(self) -> None:
        """Apply the policy (an immediate promotion needs no score), score what is unscored, apply it again,
        write the counters."""
        self.steps += 1
        self._judge()
        self._score()
        self._judge()
        self.registry.flush()

    def _signature(self) -> str:
        return self.store.golden_signature() if self.store is not None else ""

    def _score(self) -> None:
        signature = self._signature()
        with self.registry.lock:
            champion, challenger = self.registry.with_state("champion"), self.registry.with_state("challenger")
        jobs: dict[str, OnnxClassifier] = {}
        if champion is not None and _stale(champion, signature):
            evaluator = self._evaluator(champion["sha256"])
            if evaluator is not None:
                jobs[champion["sha256"]] = evaluator
        current = self._challenger
        if (
            challenger is not None
            and current is not None
            and current[0] == challenger["sha256"]
            and _stale(challenger, signature)
        ):
            jobs[current[0]] = current[1]
        if not jobs:
            return
        samples = self.store.golden_samples() if self.store is not None else []
        scores = golden_eval.score(jobs, samples, signature, cancelled=lambda: self._moot(jobs))
        if scores is None:
            return
        with self.registry.change():
            for sha, golden in scores.items():
                version = self.registry.get(sha)
                if version is not None and version["state"] in ("champion", "challenger"):
                    version["golden"] = golden
        log.info("golden set (%d frames) scored: %s", len(samples), {s[:12]: g["macro_f1"] for s, g in scores.items()})

    def _moot(self, jobs: dict[str, OnnxClassifier]) -> bool:
        """True once the pass is pointless: stopping, or a scored model is no longer champion or challenger."""
        if self._stop.is_set():
            return True
        versions = [self.registry.get(sha) for sha in jobs]
        return any(v is None or v["state"] not in ("champion", "challenger") for v in versions)

    def _evaluator(self, sha: str) -> OnnxClassifier | None:
        """A single-threaded session of the champion for scoring (kept until the champion changes)."""
        if self._champion_eval is None or self._champion_eval[0] != sha:
            try:
                self._champion_eval = (sha, OnnxClassifier(self.registry.read(sha), self.manager.schema, 1, "registry"))
            except (OSError, ModelLoadError) as exc:
                log.warning("champion %s cannot be scored: %s", sha[:12], exc)
                return None
        return self._champion_eval[1]

    def _judge(self) -> None:
        with self.manager.op_lock:
            champion, challenger = self.registry.with_state("champion"), self.registry.with_state("challenger")
            current = self._challenger
            if challenger is None or current is None or current[0] != challenger["sha256"]:
                return
            if self.store is not None and challenger["shadow"]["captures"]:
                with self.registry.change(durable=False):
                    refresh_labels(challenger, self.store)
            decision = decide(self.settings, champion, challenger)
            if decision.decision == "promoted":
                verdict = decision.verdict(champion, challenger)
                self.manager.make_champion(challenger["sha256"], "models_dir", decision.reason, verdict)
            elif decision.decision == "refused":
                with self.registry.change():
                    challenger["verdict"] = decision.verdict(champion, challenger)
                    self.registry.refuse(challenger["sha256"], decision.reason)
                self.shadow.detach()
                self._challenger = None
                log.info("challenger %s refused: %s", challenger["sha256"][:12], decision.reason)
            else:
                self._wait(decision, champion, challenger, current[1])

    def _wait(self, decision: Decision, champion: dict | None, challenger: dict, classifier: OnnxClassifier) -> None:
        """Pending or waiting: shadow once both models are scored; keep the reason and verdict current."""
        golden = challenger["golden"]
        scored = champion is not None and golden is not None and not _stale(champion, golden["signature"])
        if scored and self.settings.shadow_frames > 0 and self.shadow.challenger != challenger["sha256"]:
            assert champion is not None
            self.shadow.attach(challenger["sha256"], champion["sha256"], classifier)
        verdict = challenger["verdict"]
        with self.registry.change(durable=challenger["reason"] != decision.reason):
            challenger["reason"] = decision.reason
            if decision.decision == "pending":
                challenger["verdict"] = None
            elif verdict is None or (verdict["decision"], verdict["reason"]) != (decision.decision, decision.reason):
                challenger["verdict"] = decision.verdict(champion, challenger)

    # -- metrics ---------------------------------------------------------------------------------

    def metrics(self) -> dict[str, dict | None]:
        """``{"champion": version, "challenger": version}`` (None when absent) for the /metrics gauges."""
        with self.registry.lock:
            return {role: self.registry.with_state(role) for role in ("champion", "challenger")}


def _stale(version: dict, signature: str) -> bool:
    golden = version.get("golden")
    return golden is None or golden.get("signature") != signature
