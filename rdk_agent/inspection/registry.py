"""ModelRegistry: every model that reached the board, kept as a version with its state, scores and verdict.

Layout under the data dir: ``model_registry/registry.json`` (the versions) and ``<sha256>.onnx`` (the
bytes of every kept, non-refused version). A version's ``state`` is ``champion`` (serves),
``challenger`` (scored on the golden set, then in shadow), ``retired`` or ``refused`` (with the reason).
``champions`` is the order in which versions became champion: rollback walks it back, and pruning
never deletes the champion or the previous champion. Every write of ``registry.json`` is
:func:`rdk_agent.durable.atomic_write`; shadow counters are written by the model cycle's
:meth:`flush` every ``golden_check_s`` (2 s), so a power cut loses at most that much shadow
counting. A registry file that cannot be read is set aside and rebuilt from the kept model files (all
``retired``), with a warning, so that the agent always starts. Thread-safe: one lock guards the state.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rdk_agent.durable import atomic_write
from shared_schema import ModelCard, ModelCardError, read_model_card

log = logging.getLogger(__name__)

FORMAT = "rdk-model-registry"
STATES = ("champion", "challenger", "retired", "refused")
SHADOW_CAPTURES_MAX = 1000  # shadow predictions remembered per version, for operator-label agreement


def card_summary(card: ModelCard) -> dict:
    """The card fields a version shows: labels, architecture, precision, dataset id, sample count, metrics."""
    provenance = card.provenance or {}
    return {
        "name": card.name,
        "labels": list(card.labels),
        "architecture": card.architecture,
        "precision": card.precision,
        "dataset_id": provenance.get("dataset_id"),
        "sample_count": provenance.get("samples"),
        "run_id": provenance.get("mlflow_run_id"),  # the MLflow run that trained it (desktop_trainer.tracking)
        "tracking_uri": provenance.get("mlflow_tracking_uri"),
        "created_at": card.created_at,
        "metrics": card.metrics,
    }


def empty_shadow() -> dict:
    """Shadow counters of a version that has not run in shadow."""
    return {
        "frames": 0,
        "disagreements": 0,
        "operator_labels": 0,
        "champion_agreement": None,
        "challenger_agreement": None,
        "dropped": 0,
        "review_queued": 0,
        "captures": {},  # capture id -> [champion label, challenger label]
    }


def public(version: dict) -> dict:
    """The API form of a version (the shadow's per-capture predictions stay inside)."""
    shadow = {k: v for k, v in version["shadow"].items() if k != "captures"}
    return {**{k: v for k, v in version.items() if k not in ("shadow", "error")}, "shadow": shadow}


class ModelRegistry:
    """The versions of one board, persisted in ``directory``."""

    def __init__(self, directory: Path, keep: int = 5) -> None:
        self.directory = Path(directory)
        self.keep = keep
        self.path = self.directory / "registry.json"
        self.lock = threading.RLock()
        self.versions: dict[str, dict] = {}
        self.champions: list[str] = []
        self._dirty = False
        self._written = b""  # the bytes on disk, so that an unchanged registry is never rewritten
        self.directory.mkdir(parents=True, exist_ok=True)
        self._load()

    # -- persistence -----------------------------------------------------------------------------

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            self._written = self.path.read_bytes()
            data = json.loads(self._written.decode("utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            versions = {sha: self._checked(sha, v) for sha, v in data["versions"].items()}
            self.versions = {sha: v for sha, v in versions.items() if v is not None}
            self.champions = [s for s in data.get("champions", []) if s in self.versions]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self._recover(exc)
        champions = [s for s, v in self.versions.items() if v["state"] == "champion"]
        for sha in champions[:-1] if len(champions) > 1 else ():  # at most one champion
            self.versions[sha].update(state="retired", reason="recovered: more than one champion")
        for sha, v in self.versions.items():
            if v["state"] != "refused" and not self.file(sha).is_file():
                v.update(state="refused", reason="model file missing from the registry")

    def _checked(self, sha: str, version: object) -> dict | None:
        if not isinstance(version, dict) or version.get("state") not in STATES or version.get("sha256") != sha:
            log.warning("model registry: dropping unreadable version %s", str(sha)[:12])
            return None
        version.setdefault("shadow", empty_shadow())
        version["shadow"] = {**empty_shadow(), **version["shadow"]}
        return version

    def _recover(self, exc: Exception) -> None:
        """Set the unreadable file aside and rebuild the versions from the kept model files."""
        aside = self.path.with_name(f"registry.corrupt-{int(time.time())}.json")
        log.warning(
            "model registry %s unreadable (%s); set aside as %s, rebuilt from the kept files", self.path, exc, aside
        )
        try:
            os.replace(self.path, aside)
        except OSError as err:
            log.warning("could not set the unreadable registry aside: %s", err)
        self.versions, self.champions = {}, []
        for file in sorted(self.directory.glob("*.onnx"), key=lambda p: p.stat().st_mtime):
            try:
                card = read_model_card(file)
            except (OSError, ModelCardError):
                continue
            version = self._new(file.stem, card_summary(card), "recovered")
            version.update(state="retired", reason="recovered after an unreadable registry file")
            self.versions[file.stem] = version
        self._dirty = True

    def save(self) -> None:
        """Write the registry now (atomic)."""
        with self.lock:
            data = {"format": FORMAT, "version": 1, "versions": self.versions, "champions": self.champions}
            payload = json.dumps(data, indent=1, sort_keys=True).encode("utf-8")
            if payload != self._written:  # spare the board's flash an identical rewrite
                atomic_write(self.path, payload)
                self._written = payload
            self._dirty = False

    def flush(self) -> None:
        """Write the registry if counters changed since the last write."""
        if self._dirty:
            self.save()

    @contextmanager
    def change(self, durable: bool = True) -> Iterator[None]:
        """Hold the lock for a change; on exit save it (``durable``) or mark it for the next :meth:`flush`."""
        with self.lock:
            yield
            if durable:
                self.save()
            else:
                self._dirty = True

    # -- versions --------------------------------------------------------------------------------

    def file(self, sha256: str) -> Path:
        """Where a kept version's bytes are."""
        return self.directory / f"{sha256}.onnx"

    def read(self, sha256: str) -> bytes:
        """A kept version's bytes."""
        return self.file(sha256).read_bytes()

    def get(self, sha256: str) -> dict | None:
        """One version, or None."""
        return self.versions.get(sha256)

    def with_state(self, state: str) -> dict | None:
        """The newest version in ``state``, or None."""
        with self.lock:
            found = [v for v in self.versions.values() if v["state"] == state]
        return max(found, key=lambda v: v["arrived_at"]) if found else None

    def listing(self) -> list[dict]:
        """Every version's API form, newest first."""
        with self.lock:
            return [public(v) for v in sorted(self.versions.values(), key=lambda v: v["arrived_at"], reverse=True)]

    @staticmethod
    def _new(sha256: str, card: dict | None, source: str) -> dict:
        return {
            "sha256": sha256,
            "name": (card or {}).get("name"),
            "state": "challenger",
            "reason": "",
            "arrived_at": time.time(),
            "source": source,
            "card": card,
            "golden": None,
            "shadow": empty_shadow(),
            "verdict": None,
            "error": None,
        }

    def arrive(self, sha256: str, data: bytes, card: dict, source: str) -> dict:
        """Keep a checked model as a version (its bytes too); an existing version keeps its history."""
        with self.change():
            if not self.file(sha256).is_file():
                atomic_write(self.file(sha256), data)
            version = self.versions.get(sha256)
            if version is None:
                version = self.versions[sha256] = self._new(sha256, card, source)
            else:
                version.update(arrived_at=time.time(), source=source, card=card, name=card.get("name"))
            return version

    def refuse(self, sha256: str, reason: str, error: dict | None = None, card: dict | None = None) -> dict:
        """Record ``sha256`` as refused with ``reason`` (its bytes are not kept)."""
        with self.change():
            version = self.versions.get(sha256) or self._new(sha256, card, "models_dir")
            version.update(state="refused", reason=reason, error=error)
            self.versions[sha256] = version
            if sha256 not in self.champions[-2:]:
                self.file(sha256).unlink(missing_ok=True)
            self._prune()
            return version

    def set_champion(self, sha256: str, reason: str) -> str | None:
        """Make ``sha256`` the champion; the former one is retired. Returns the former champion's sha256."""
        with self.change():
            former = self.with_state("champion")
            if former is not None and former["sha256"] != sha256:
                former.update(state="retired", reason=f"replaced by {sha256[:12]}")
            self.versions[sha256].update(state="champion", reason=reason)
            self.champions = [s for s in self.champions if s != sha256] + [sha256]
            self._prune()
            return former["sha256"] if former is not None and former["sha256"] != sha256 else None

    def roll_back_to(self, sha256: str, reason: str) -> None:
        """Make ``sha256`` the champion and drop the current one from the champion order (rollback)."""
        with self.change():
            current = self.with_state("champion")
            if current is not None:
                self.champions = [s for s in self.champions if s != current["sha256"]]
                current.update(state="retired", reason=f"rolled back to {sha256[:12]}")
            self.versions[sha256].update(state="champion", reason=reason)
            self.champions = [s for s in self.champions if s != sha256] + [sha256]

    def previous_champion(self) -> str | None:
        """The kept version that was champion before the current one, or None."""
        with self.lock:
            current = self.with_state("champion")
            order = [s for s in self.champions if current is None or s != current["sha256"]]
            kept = [s for s in order if self.versions[s]["state"] != "refused" and self.file(s).is_file()]
        return kept[-1] if kept else None

    def _prune(self) -> None:
        """Delete the oldest kept versions beyond ``keep``: never the champion or the previous champion."""
        protected = set(self.champions[-2:]) | {v["sha256"] for v in self.versions.values() if v["state"] != "retired"}
        kept = sorted(
            (v for v in self.versions.values() if v["state"] != "refused"), key=lambda v: v["arrived_at"], reverse=True
        )
        for version in kept[self.keep :]:
            if version["sha256"] not in protected:
                self._forget(version["sha256"])
        refused = sorted((v for v in self.versions.values() if v["state"] == "refused"), key=lambda v: v["arrived_at"])
        for version in refused[: max(0, len(refused) - self.keep)]:
            self._forget(version["sha256"])

    def _forget(self, sha256: str) -> None:
        self.versions.pop(sha256, None)
        self.champions = [s for s in self.champions if s != sha256]
        try:
            self.file(sha256).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not delete old model %s: %s", sha256[:12], exc)

    def import_legacy(self, history_dir: Path) -> None:
        """Take over the models of the former ``<models_dir>/.history`` (oldest first), once."""
        index = history_dir / "index.json"
        try:
            entries = json.loads(index.read_text(encoding="utf-8")).get("models", [])
        except (OSError, ValueError, AttributeError):
            return
        for entry in entries if isinstance(entries, list) else []:
            sha = entry.get("sha256") if isinstance(entry, dict) else None
            path = history_dir / f"{sha}.onnx"
            if not sha or sha in self.versions or not path.is_file():
                continue
            try:
                card = card_summary(read_model_card(path))
                self.arrive(sha, path.read_bytes(), card, "history")
            except (OSError, ModelCardError) as exc:
                log.warning("former history model %s not taken over: %s", sha[:12], exc)
                continue
            self.set_champion(sha, "taken over from the former model history")
        index.rename(history_dir / "index.imported.json")
