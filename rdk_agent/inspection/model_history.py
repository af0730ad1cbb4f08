"""ModelHistory: the last few good models, kept as files so rollback survives a restart.

Layout: ``<models_dir>/.history/<sha256>.onnx`` plus ``index.json`` listing them oldest first.
Every write is ``rdk_agent.durable.atomic_write``, so a power cut leaves the old or the new state.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from rdk_agent.durable import atomic_write

log = logging.getLogger(__name__)


class ModelHistory:
    """Good models in activation order; at most ``keep`` of them."""

    def __init__(self, directory: Path, keep: int = 3) -> None:
        self.directory = Path(directory)
        self.keep = keep
        self._index = self.directory / "index.json"

    def entries(self) -> list[dict]:
        """Entries ``{"sha256", "name", "activated_at"}``, oldest first, whose files exist."""
        try:
            data = json.loads(self._index.read_text(encoding="utf-8"))
            entries = [e for e in data.get("models", []) if isinstance(e, dict) and "sha256" in e]
        except (OSError, ValueError, AttributeError):
            return []
        return [e for e in entries if self.path(e["sha256"]).is_file()]

    def path(self, sha256: str) -> Path:
        """File of one kept model."""
        return self.directory / f"{sha256}.onnx"

    def read(self, sha256: str) -> bytes:
        """Bytes of one kept model."""
        return self.path(sha256).read_bytes()

    def add(self, sha256: str, name: str, data: bytes) -> None:
        """Record ``sha256`` as the newest good model, keeping its bytes; drop the oldest beyond ``keep``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.path(sha256).is_file():
            atomic_write(self.path(sha256), data)
        entries = [e for e in self.entries() if e["sha256"] != sha256]
        entries.append({"sha256": sha256, "name": name, "activated_at": time.time()})
        self._save(entries[-self.keep :], dropped=entries[: -self.keep])

    def remove(self, sha256: str) -> None:
        """Forget one model and delete its file."""
        entries = self.entries()
        self._save([e for e in entries if e["sha256"] != sha256], [e for e in entries if e["sha256"] == sha256])

    def _save(self, entries: list[dict], dropped: list[dict]) -> None:
        atomic_write(self._index, json.dumps({"models": entries}, indent=1).encode("utf-8"))
        kept = {e["sha256"] for e in entries}
        for entry in dropped:
            if entry["sha256"] not in kept:
                try:
                    self.path(entry["sha256"]).unlink()
                except OSError as exc:
                    log.warning("could not delete old model %s: %s", entry["sha256"][:12], exc)
