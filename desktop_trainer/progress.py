"""Progress reporting that suits where the output goes: bars on a terminal, one line per epoch in a log."""

from __future__ import annotations

import logging
import sys
import time

import lightning as L

log = logging.getLogger(__name__)


def on_terminal() -> bool:
    """True when stderr is an interactive terminal (progress bars redraw there; a log file only fills up)."""
    return sys.stderr.isatty()


def resolve_flag(value: bool | str) -> bool:
    """A progress setting: true, false, or ``auto`` (bars only on a terminal)."""
    if isinstance(value, bool):
        return value
    if str(value).lower() == "auto":
        return on_terminal()
    raise ValueError(f"progress settings take true, false or auto, got {value!r}")


class EpochSummary(L.Callback):
    """Log one line per finished epoch: the epoch of the total, the logged metrics and the elapsed time."""

    def __init__(self) -> None:
        self.started = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("train/", "val/"))}
        shown = "  ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()))
        elapsed = time.monotonic() - self.started
        log.info("epoch %d/%d  %s  (%.0f s)", trainer.current_epoch + 1, trainer.max_epochs, shown, elapsed)
