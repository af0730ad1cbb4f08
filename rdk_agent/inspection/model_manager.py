"""ModelManager: watch the models dir, check new model files in the background, swap, roll back.

The serving model is one reference (``active``). A request reads it once and keeps using that
object, so a swap never disturbs requests in flight: they finish on the old session, which is
freed when the last of them drops it. A file that fails the checks is never served; the
previous model keeps serving (or the rules, if there is none) and ``status()`` says why.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rdk_agent.durable import atomic_write
from rdk_agent.inspection.deadline import ModelHealth
from rdk_agent.inspection.model_history import ModelHistory
from rdk_agent.inspection.onnx_model import ModelLoadError, OnnxClassifier
from rdk_agent.inspection.settings import InspectionSettings
from rdk_agent.inspection.thresholds import resolve_thresholds
from rdk_agent.telemetry import Telemetry
from shared_schema import LabelSchema

log = logging.getLogger(__name__)


class RollbackError(Exception):
    """No previous good model to return to, or it could not be loaded."""


@dataclass
class ActiveModel:
    """The serving classifier, how it got there and its health."""

    classifier: OnnxClassifier
    source: str  # "models_dir", "history" (restart after a refused file) or "rollback"
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


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)


class ModelManager:
    """Owns the serving model; ``start()`` loads the current file and starts the watcher thread."""

    def __init__(
        self,
        models_dir: Path,
        schema: LabelSchema,
        settings: InspectionSettings | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings or InspectionSettings()
        self.models_dir = Path(models_dir)
        self.model_path = self.models_dir / self.settings.model_filename
        self.schema = schema
        self.telemetry = telemetry or Telemetry()
        self.history = ModelHistory(self.models_dir / ".history", keep=self.settings.keep_models)
        self.active: ActiveModel | None = None
        self.loading = False
        self.last_error: dict | None = None
        self.file_sha256: str | None = None
        self._op_lock = threading.RLock()
        self._seen: tuple[int, int, int] | None = None
        self._pending: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the current model file (or the last good one if it is refused) and start watching."""
        self.models_dir.mkdir(parents=True, exist_ok=True)
        with self._op_lock:
            self._seen = _signature(self.model_path)
            if self._seen is not None and not self._load_file() and self.active is None:
                self._restore_last_good()
        self._thread = threading.Thread(target=self._watch, name="model-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the watcher thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.poll_interval_s):
            try:
                self.poll()
            except Exception:  # the watcher must survive anything a file system throws at it
                log.exception("model watch failed")

    def poll(self) -> None:
        """Look at the model file once; act on a change that has been stable for one poll."""
        sig = _signature(self.model_path)
        if sig == self._seen:
            self._pending = None
            return
        if sig != self._pending:  # still being written (or just appeared): look again next poll
            self._pending = sig
            return
        with self._op_lock:
            self._seen, self._pending = sig, None
            if sig is None:
                self._unload()
            else:
                self._load_file()

    # -- loading ---------------------------------------------------------------------------------

    def _load_file(self) -> bool:
        """Check the model file and swap it in; False (and ``last_error``) if refused."""
        try:
            data = self.model_path.read_bytes()
        except OSError as exc:
            self._refuse(None, ModelLoadError("load_failed", "unreadable", f"cannot read model file: {exc.strerror}"))
            return False
        sha = hashlib.sha256(data).hexdigest()
        self.file_sha256 = sha
        if self.active is not None and self.active.classifier.sha256 == sha:
            self.last_error = None
            return True
        if self.last_error is not None and self.last_error["file_sha256"] == sha:
            return False  # the same refused bytes again (touched or re-copied)
        self.loading = True
        try:
            classifier = OnnxClassifier(data, self.schema, self.settings.intra_op_threads, source=str(self.model_path))
        except ModelLoadError as exc:
            self._refuse(sha, exc)
            return False
        finally:
            self.loading = False
        self._activate(classifier, "models_dir", data)
        self.last_error = None
        return True

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

    def _activate(self, classifier: OnnxClassifier, source: str, data: bytes) -> ActiveModel:
        try:  # kept before it serves, so that whatever serves can be rolled back to
            self.history.add(classifier.sha256, classifier.card.name, data)
        except OSError as exc:
            log.warning("model %s serves but is not kept for rollback: %s", classifier.sha256[:12], exc)
        health = ModelHealth(self.settings.max_consecutive_timeouts, self.settings.unhealthy_cooldown_s)
        active = self.active = ActiveModel(classifier, source, health=health)  # the atomic swap
        self.telemetry.model_reloads.inc()
        self.telemetry.model_active.set(1)
        log.info(
            "model %s (%s) active from %s, load %.0f ms",
            classifier.sha256[:12],
            classifier.card.name,
            source,
            classifier.load_ms,
        )
        return active

    def _unload(self) -> None:
        log.info("model file removed; inspection falls back to the rules")
        self.active = None
        self.file_sha256 = None
        self.last_error = None
        self.telemetry.model_active.set(0)

    def _restore_last_good(self) -> None:
        entries = self.history.entries()
        if not entries:
            return
        entry = entries[-1]
        try:
            data = self.history.read(entry["sha256"])
            classifier = OnnxClassifier(data, self.schema, self.settings.intra_op_threads, source="history")
        except (OSError, ModelLoadError) as exc:
            log.warning("last good model %s cannot be restored: %s", entry["sha256"][:12], exc)
            return
        self._activate(classifier, "history", data)

    # -- rollback --------------------------------------------------------------------------------

    def rollback(self) -> ActiveModel:
        """Serve the good model before the current one; it also becomes the models dir's file."""
        with self._op_lock:
            current = self.active.classifier.sha256 if self.active is not None else None
            candidates = [e for e in self.history.entries() if e["sha256"] != current]
            if not candidates:
                raise RollbackError("no previous good model is kept")
            target = candidates[-1]
            try:
                data = self.history.read(target["sha256"])
                classifier = OnnxClassifier(data, self.schema, self.settings.intra_op_threads, source="rollback")
            except (OSError, ModelLoadError) as exc:
                self.history.remove(target["sha256"])
                raise RollbackError(f"previous model {target['sha256'][:12]} cannot be loaded: {exc}") from None
            atomic_write(self.model_path, data)
            self._seen, self._pending = _signature(self.model_path), None
            self.file_sha256 = classifier.sha256
            self.last_error = None
            if current is not None:
                self.history.remove(current)
            return self._activate(classifier, "rollback", data)

    # -- reporting -------------------------------------------------------------------------------

    def unavailable_reason(self) -> str:
        """Fallback reason while no model serves: ``no_model``, ``load_failed`` or ``schema_mismatch``."""
        if self.last_error is not None:
            return self.last_error["reason"]
        return "no_model"

    def state(self) -> str:
        """``active``, ``serving_previous`` (the file was refused), ``failed`` or ``no_model``."""
        active = self.active
        if active is None:
            return "failed" if self.last_error is not None else "no_model"
        if self.file_sha256 is not None and self.file_sha256 != active.classifier.sha256:
            return "serving_previous"
        return "active"

    def summary(self) -> dict:
        """``{"state", "sha256"}``: the state and the serving model's sha256 (None when none serves)."""
        active = self.active
        return {"state": self.state(), "sha256": active.classifier.sha256 if active is not None else None}

    def status(self) -> dict:
        """Everything the model API reports but the inspection counters: the serving model, the file, the kept
        models, the settings, and the thresholds in force with their sources (station, card, default)."""
        active = self.active
        card = active.classifier.card if active is not None else None
        thresholds = resolve_thresholds(self.settings, card)
        return {
            "state": self.state(),
            "active": active.to_dict() if active is not None else None,
            "loading": self.loading,
            "last_error": self.last_error,
            "file": {"path": str(self.model_path), "present": self.model_path.is_file(), "sha256": self.file_sha256},
            "history": self.history.entries(),
            "schema_hash": self.schema.hash,
            "settings": {
                "intra_op_threads": self.settings.intra_op_threads,
                "poll_interval_s": self.settings.poll_interval_s,
                "keep_models": self.settings.keep_models,
                "confidence_threshold": thresholds.confidence,
                "review_threshold": thresholds.review,
                "timeout_ms": self.settings.timeout_ms,
                "rules": self.settings.rules,
            },
            "thresholds": {
                **thresholds.to_dict(),
                "station": {"confidence": self.settings.confidence_threshold, "review": self.settings.review_threshold},
                "card": {
                    "confidence": card.confidence_threshold if card is not None else None,
                    "review": card.review_threshold if card is not None else None,
                },
            },
        }
