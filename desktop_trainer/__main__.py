"""``python -m desktop_trainer +experiment=baseline data.source=...``"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from desktop_trainer.data.samples import DataError
from desktop_trainer.export.onnx_export import ParityError
from desktop_trainer.models.backbones import BackboneError


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Train, export and report; returns the test macro-F1 (for sweeps)."""
    from desktop_trainer.runtime import keep_freed_memory
    from desktop_trainer.train import run

    keep_freed_memory()
    try:
        metrics = run(cfg)
    except (DataError, BackboneError, ParityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    return None if metrics is None else metrics["test"].get("macro_f1")


if __name__ == "__main__":
    main()
