"""ModelManager: watch the models dir, check arriving models, keep them as versions, swap the champion.

A model file that arrives in the models dir (rsync's atomic rename) and passes the card checks
becomes the **challenger** in the registry (``rdk_agent.inspection.registry``); a file that fails
them is recorded as ``refused`` with the reason and never served. The model cycle
(``rdk_agent.inspection.cycle``) scores the challenger on the golden set, runs it in shadow and
applies the promotion policy. Promotion, operator promotion and rollback are one hot swap: the
serving model is one reference (``active``); a request reads it once and keeps that object, so a
swap never disturbs requests in flight, and the old session is freed when the last of them drops it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rdk_agent.durable import atomic_write
from rdk_agent.inspection.cycle import ModelCycle, Store
from rdk_agent.inspection.deadline import ModelHealth
from rdk_agent.inspection.onnx_model import ModelLoadError, OnnxClassifier
from rdk_agent.inspection.registry import ModelRegistry, public
from rdk_agent.inspection.settings import InspectionSettings
from rdk_agent.inspection.shadow import ShadowRunner
from rdk_agent.inspection.thresholds import resolve_thresholds
from rdk_agent.telemetry import Telemetry
from shared_schema import LabelSchema

log = logging.getLogger(__name__)


class RollbackError(Exception):
    """No previous good model to return to, or it could not be loaded."""


class PromotionError(Exception):
    """A version cannot be promoted (refused, not kept, already the champion, or unloadable)."""


class UnknownVersion(KeyError):
    """No version with that sha256 is known on this board."""


@dataclass
class ActiveModel:
    """The serving classifier, how it got there and its health."""

    classifier: OnnxClassifier
    source: str  # "models_dir" (promoted on arrival), "history" (restart), "rollback" or "operator"
    activated_at: float = field(default_factory=time.time)
    health: ModelHealth = field(default_factory=ModelHealth)

    def to_dict(self) -> dict:
        """JSON summary for the status API."""
        return {
            **self.classifier.describe(),
            "source": self.source,
            "activated_at": self.activated_at,
            "health": self.health.to_dict(),
        }


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """(mtime, inode, size) of ``path``, or None when it is absent: a changed signature means a new file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)


class ModelManager:
    """Owns the serving model and the registry; ``start()`` restores the champion and starts the threads.

    ``registry_dir`` holds the kept versions (default ``<models_dir>/.registry``; the agent uses
    ``<data_dir>/model_registry``). ``store`` gives the golden set and the operator labels (None: no
    golden set, every score has n = 0).
    """

    def __init__(
        self,
        models_dir: Path,
        schema: LabelSchema,
        settings: InspectionSettings | None = None,
        telemetry: Telemetry | None = None,
        registry_dir: Path | None = None,
        store: Store | None = None,
    ) -> None:
        self.settings = settings or InspectionSettings()
        self.models_dir = Path(models_dir)
        self.model_path = self.models_dir / self.settings.model_filename
        self.schema = schema
        self.telemetry = telemetry or Telemetry()
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.registry = ModelRegistry(registry_dir or self.models_dir / ".registry", keep=self.settings.keep_models)
        self.shadow = ShadowRunner(self.registry, self.settings.shadow_queue, self.settings.shadow_review_max)
        self.cycle = ModelCycle(self, store)
        self.active: ActiveModel | None = None
        self.loading = False
        self.last_error: dict | None = None
        self.file_sha256: str | None = None
        self.op_lock = threading.RLock()
        self._seen: tuple[int, int, int] | None = None
        self._pending: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.telemetry.model_scores = self.cycle.metrics

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Restore the champion, look at the models dir's file once (a first model is judged before this returns),
        start the watcher, cycle and shadow threads."""
        with self.op_lock:
            self.registry.import_legacy(self.models_dir / ".history")
            self._restore_champion()
            self._seen = file_signature(self.model_path)
            if self._seen is not None:
                self._arrive(at_start=True)
        if self.active is None and self.registry.with_state("challenger") is not None:
            self.cycle.resume()
            self.cycle.step()  # a first model serves from the start, once the golden set has judged it
        self.shadow.start()
        self.cycle.start()
        self._thread = threading.Thread(target=self._watch, name="model-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the threads and write the registry's last counters."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.cycle.stop()
        self.shadow.stop()
        self.registry.flush()

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.poll_interval_s):
            try:
                self.poll()
            except Exception:  # the watcher must survive anything a file system throws at it
                log.exception("model watch failed")

    def poll(self) -> None:
        """Look at the model file once; act on a change that has been stable for one poll."""
        sig = file_signature(self.model_path)
        if sig == self._seen:
            self._pending = None
            return
        if sig != self._pending:  # still being written (or just appeared): look again next poll
            self._pending = sig
            return
        with self.op_lock:
            self._seen, self._pending = sig, None
            if sig is None:
                self.file_sha256 = None
                self.last_error = None
            else:
                self._arrive()

    # -- arrival ---------------------------------------------------------------------------------

    def _arrive(self, at_start: bool = False) -> None:
        """Check the models dir's file; a new sound model becomes the challenger, a bad one is refused."""
        try:
            data = self.model_path.read_bytes()
        except OSError as exc:
            self._refuse(None, ModelLoadError("load_failed", "unreadable", f"cannot read model file: {exc.strerror}"))
            return
        sha = hashlib.sha256(data).hexdigest()
        self.file_sha256 = sha
        known = self.registry.get(sha)
        settled = at_start and self.registry.with_state("champion") is not None  # a restart re-judges nothing
        if known is not None and (known["state"] in ("champion", "challenger") or settled):
            self.last_error = known["error"] if known["state"] == "refused" else None
            return
        if known is not None and known["state"] == "refused" and known["error"] is not None:
            self.last_error = known["error"]  # the same unloadable bytes again (touched or re-copied)
            return
        self.loading = True
        try:
            classifier = OnnxClassifier(data, self.schema, 1, source=str(self.model_path))
        except ModelLoadError as exc:
            self._refuse(sha, exc)
            return
        finally:
            self.loading = False
        self.last_error = None
        self.cycle.new_challenger(sha, data, classifier)

    def _refuse(self, sha: str | None, exc: ModelLoadError) -> None:
        log.warning("model %s refused (%s): %s", (sha or "?")[:12], exc.code, exc.message)
        self.telemetry.model_failures.inc(code=exc.code)
        self.last_error = {
            "file_sha256": sha,
            "reason": exc.reason,
            "code": exc.code,
            "message": exc.message,
            "at": time.time(),
        }
        if sha is not None:
            self.registry.refuse(sha, f"{exc.code}: {exc.message}", self.last_error)

    # -- swaps -----------------------------------------------------------------------------------

    def _serving(self, sha: str, source: str) -> OnnxClassifier:
        """A serving session (the station's thread count) for a kept version."""
        return OnnxClassifier(self.registry.read(sha), self.schema, self.settings.intra_op_threads, source=source)

    def _swap(self, classifier: OnnxClassifier, source: str) -> ActiveModel:
        health = ModelHealth(self.settings.max_consecutive_timeouts, self.settings.unhealthy_cooldown_s)
        active = self.active = ActiveModel(classifier, source, health=health)  # the atomic swap
        self.telemetry.model_reloads.inc()
        self.telemetry.model_active.set(1)
        log.info("model %s (%s) serves, from %s", classifier.sha256[:12], classifier.card.name, source)
        return active

    def _restore_champion(self) -> None:
        champion = self.registry.with_state("champion")
        if champion is None:
            return
        try:
            self._swap(self._serving(champion["sha256"], "history"), "history")
        except (OSError, ModelLoadError) as exc:
            log.warning("champion %s cannot be restored: %s", champion["sha256"][:12], exc)

    def make_champion(self, sha: str, source: str, reason: str, verdict: dict | None = None) -> ActiveModel:
        """Load ``sha`` for serving, then swap it in and record it as champion (PromotionError if it cannot load)."""
        with self.op_lock:
            try:
                classifier = self._serving(sha, source)
            except (OSError, ModelLoadError) as exc:
                raise PromotionError(f"version {sha[:12]} cannot be loaded: {exc}") from None
            active = self._swap(classifier, source)
            with self.registry.change():
                former = self.registry.set_champion(sha, reason)
                if verdict is not None:
                    self.registry.versions[sha]["verdict"] = verdict
            self.cycle.champion_changed(former)
            return active

    def _write_file(self, sha: str) -> None:
        """Put a kept version in the models dir too, so that the file names what serves (the watcher ignores it)."""
        if self.file_sha256 == sha:
            return
        atomic_write(self.model_path, self.registry.read(sha))
        self._seen, self._pending = file_signature(self.model_path), None
        self.file_sha256, self.last_error = sha, None

    def promote(self, sha: str) -> ActiveModel:
        """The operator promotes a kept, non-refused version (UnknownVersion, PromotionError)."""
        with self.op_lock:
            version = self.registry.get(sha)
            if version is None:
                raise UnknownVersion(sha)
            if version["state"] == "champion":
                raise PromotionError(f"version {sha[:12]} is already the champion")
            if version["state"] == "refused" or not self.registry.file(sha).is_file():
                raise PromotionError(f"version {sha[:12]} is {version['state']} ({version['reason']}); it cannot serve")
            champion = self.registry.with_state("champion")
            verdict = self.cycle.verdict_for(champion, version, "promoted", "promoted by the operator")
            active = self.make_champion(sha, "operator", "promoted by the operator", verdict)
            self._write_file(sha)
            return active

    def rollback(self, sha: str | None = None) -> ActiveModel:
        """Serve the previous champion (or the kept version ``sha``); it also becomes the models dir's file."""
        with self.op_lock:
            target = sha or self.registry.previous_champion()
            if target is None:
                raise RollbackError("no previous good model is kept")
            version = self.registry.get(target)
            if version is None:
                raise UnknownVersion(target)
            if version["state"] == "refused" or not self.registry.file(target).is_file():
                raise RollbackError(f"version {target[:12]} is {version['state']} and cannot serve")
            if version["state"] == "champion":
                raise RollbackError(f"version {target[:12]} is already the champion")
            try:
                classifier = self._serving(target, "rollback")
            except (OSError, ModelLoadError) as exc:
                raise RollbackError(f"version {target[:12]} cannot be loaded: {exc}") from None
            active = self._swap(classifier, "rollback")
            former = self.registry.with_state("champion")
            self.registry.roll_back_to(target, "rolled back by the operator")
            self.cycle.champion_changed(former["sha256"] if former else None)
            self._write_file(target)
            return active

    # -- reporting -------------------------------------------------------------------------------

    def unavailable_reason(self) -> str:
        """Fallback reason while no model serves: ``no_model``, ``load_failed`` or ``schema_mismatch``."""
        if self.last_error is not None:
            return self.last_error["reason"]
        return "no_model"

    def state(self) -> str:
        """``active``, ``challenger`` (the file is the challenger), ``serving_previous`` (the file was refused or
        retired), ``failed`` or ``no_model``."""
        return self._state(self.active)

    def _state(self, active: ActiveModel | None) -> str:
        """The state for one read of ``active`` (a swap may happen between two reads)."""
        if active is None:
            return "failed" if self.last_error is not None else "no_model"
        if self.file_sha256 is not None and self.file_sha256 != active.classifier.sha256:
            challenger = self.registry.with_state("challenger")
            return (
                "challenger"
                if challenger is not None and challenger["sha256"] == self.file_sha256
                else "serving_previous"
            )
        return "active"

    def summary(self) -> dict:
        """``{"state", "sha256"}``: the state and the serving model's sha256 (None when none serves)."""
        active = self.active
        return {"state": self._state(active), "sha256": active.classifier.sha256 if active is not None else None}

    def version(self, sha: str) -> dict:
        """One version's API form (UnknownVersion)."""
        with self.registry.lock:
            version = self.registry.get(sha)
            if version is None:
                raise UnknownVersion(sha)
            return public(version)

    def status(self) -> dict:
        """Everything the model API reports but the inspection counters: the serving model, the file, the
        champion and challenger versions, the kept champions, the settings, and the thresholds in force."""
        active = self.active
        card = active.classifier.card if active is not None else None
        thresholds = resolve_thresholds(self.settings, card)
        with self.registry.lock:
            champion, challenger = self.registry.with_state("champion"), self.registry.with_state("challenger")
            history = [
                {"sha256": s, "name": self.registry.versions[s]["name"], "state": self.registry.versions[s]["state"]}
                for s in self.registry.champions
            ]
            champion_dict = public(champion) if champion else None
            challenger_dict = public(challenger) if challenger else None
        s = self.settings
        return {
            "state": self._state(active),
            "active": active.to_dict() if active is not None else None,
            "loading": self.loading,
            "last_error": self.last_error,
            "file": {"path": str(self.model_path), "present": self.model_path.is_file(), "sha256": self.file_sha256},
            "champion": champion_dict,
            "challenger": challenger_dict,
            "history": history,
            "schema_hash": self.schema.hash,
            "settings": {
                "intra_op_threads": s.intra_op_threads,
                "poll_interval_s": s.poll_interval_s,
                "keep_models": s.keep_models,
                "confidence_threshold": thresholds.confidence,
                "review_threshold": thresholds.review,
                "timeout_ms": s.timeout_ms,
                "rules": s.rules,
                "promotion": s.promotion,
                "promotion_margin": s.promotion_margin,
                "shadow_frames": s.shadow_frames,
            },
            "thresholds": {
                **thresholds.to_dict(),
                "station": {"confidence": s.confidence_threshold, "review": s.review_threshold},
                "card": {
                    "confidence": card.confidence_threshold if card is not None else None,
                    "review": card.review_threshold if card is not None else None,
                },
            },
        }
