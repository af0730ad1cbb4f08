"""Deterministic train/val/test split that is stable as the dataset grows.

A sample's split is a function of its group (``meta["group"]`` or its id) only: the group's
sha256 maps to a number u in [0, 1); u < test → test, u < test + val → val, else train. Adding
samples never moves existing ones. For small classes the hash alone may leave val or test
empty, so each class with at least ``min_per_class`` samples gets its lowest-u training group
moved into an empty split (a deterministic fix-up that disappears once the class is large).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

from desktop_trainer.data.samples import DataError, Sample

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """Samples per split and their per-class counts."""

    train: tuple[Sample, ...]
    val: tuple[Sample, ...]
    test: tuple[Sample, ...]

    def sizes(self, labels: list[str]) -> dict[str, dict[str, int]]:
        """{split: {label: count, ..., "total": n}} in label order."""
        out = {}
        for name in SPLITS:
            counts = {label: 0 for label in labels}
            for sample in getattr(self, name):
                counts[sample.label] += 1
            out[name] = {**counts, "total": sum(counts.values())}
        return out


def unit_hash(key: str, seed: str = "") -> float:
    """A stable number in [0, 1) for a group key."""
    digest = hashlib.sha256(f"{seed}{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_samples(
    samples: tuple[Sample, ...] | list[Sample],
    labels: list[str],
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    min_per_class: int = 5,
    seed: str = "",
) -> Split:
    """Split by group hash, then make sure each trainable class is present in val and test.

    Raises DataError naming the class and its count when a class has fewer than ``min_per_class``
    samples (it could not be trained and evaluated).
    """
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DataError(f"bad split fractions val={val_fraction} test={test_fraction}")
    by_label: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_label[sample.label].append(sample)
    for label in labels:
        count = len(by_label.get(label, []))
        if count < min_per_class:
            raise DataError(
                f"class {label!r} has {count} sample(s); at least {min_per_class} are needed to train and "
                f"evaluate it (collect more, or drop the class from the label schema)"
            )
    assigned: dict[str, str] = {}
    for label in labels:
        groups = sorted({s.group for s in by_label[label]}, key=lambda g: unit_hash(g, seed))
        for group in groups:
            u = unit_hash(group, seed)
            split = "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"
            assigned.setdefault(group, split)
        for target, wanted in (("test", test_fraction), ("val", val_fraction)):
            present = any(assigned[g] == target for g in groups)
            train_groups = [g for g in groups if assigned[g] == "train"]
            if wanted > 0 and not present and len(train_groups) > 1:
                assigned[train_groups[0]] = target
    parts: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    for sample in sorted(samples, key=lambda s: (labels.index(s.label), s.id)):
        parts[assigned[sample.group]].append(sample)
    return Split(train=tuple(parts["train"]), val=tuple(parts["val"]), test=tuple(parts["test"]))
