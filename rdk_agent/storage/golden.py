"""The golden set: the frozen evaluation captures every model on the board is scored on.

A capture is golden from the moment it is stored when its group (its own id when it has none) falls
on the test side of the stable group split (:func:`shared_schema.split.is_test_group`), the same
function the trainer splits with, so the set only grows and never shuffles. The operator can put a
capture or a whole group in or out of it; every such change, and every label change of a golden
capture, is audited (:mod:`rdk_agent.storage.audit`). The trainer always tests on golden samples and
never trains on them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GoldenSample:
    """One labelled golden capture, with absolute paths to its files."""

    id: str
    label: str
    rgb_path: Path
    depth_path: Path | None
    group: str | None


def signature(samples: Iterable[GoldenSample]) -> str:
    """sha256 over the sorted (id, label) pairs: changes whenever a sample joins, leaves or is relabelled."""
    digest = hashlib.sha256(b"rdk-golden-v1")
    for sample_id, label in sorted((s.id, s.label) for s in samples):
        digest.update(f"\n{sample_id}\t{label}".encode())
    return digest.hexdigest()
