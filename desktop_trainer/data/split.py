"""Deterministic train/val/test split by group, stable as the dataset grows.

A sample's split is :func:`shared_schema.split.split_of` of its group key alone (the key's sha256
maps to u in [0, 1); u < test → test, u < test + val → val, else train), the function the agent
uses too. Adding samples never moves existing ones, and nothing is ever moved to fill a split: a
class whose groups all hash away from val or test gets a warning saying so and how many more
groups it will take, recorded in the split (and so in metrics.json and the report).

Golden samples (the station's frozen evaluation set) always go to test, whatever their group's hash,
and so does every other sample of a group holding one: a group never straddles splits, so nothing
the model is trained or validated on shares a part, weld or run with a golden sample.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from itertools import combinations

from desktop_trainer.data.samples import DataError, Sample
from shared_schema.split import SPLITS, check_fractions, split_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """Samples per split, and the warnings about classes missing from a split."""

    train: tuple[Sample, ...]
    val: tuple[Sample, ...]
    test: tuple[Sample, ...]
    warnings: tuple[str, ...] = ()

    def sizes(self, labels: list[str]) -> dict[str, dict[str, int]]:
        """{split: {label: count, ..., "total": n}} in label order."""
        out = {}
        for name in SPLITS:
            counts = {label: 0 for label in labels}
            for sample in getattr(self, name):
                counts[sample.label] += 1
            out[name] = {**counts, "total": sum(counts.values())}
        return out

    def groups(self) -> dict[str, list[str]]:
        """{split: sorted group keys}."""
        return {name: sorted({s.group for s in getattr(self, name)}) for name in SPLITS}

    def class_groups(self, labels: list[str]) -> dict[str, dict[str, int]]:
        """{label: {split: number of groups holding samples of that label}}."""
        out = {label: {name: set() for name in SPLITS} for label in labels}
        for name in SPLITS:
            for sample in getattr(self, name):
                out[sample.label][name].add(sample.group)
        return {label: {name: len(keys) for name, keys in per.items()} for label, per in out.items()}

    def summary(self, labels: list[str]) -> dict:
        """The split's groups for metrics.json: counts and names per split, groups per class, golden, warnings."""
        return {
            "groups": {name: {"count": len(keys), "names": keys} for name, keys in self.groups().items()},
            "per_class": self.class_groups(labels),
            "golden": sum(s.golden for s in self.test),
            "warnings": list(self.warnings),
        }


def expected_groups_until_present(probabilities: list[float]) -> float:
    """Mean number of new groups until each split with these probabilities has received one.

    Each new group lands in split i with probability p_i (a coupon collector with unequal odds); by
    inclusion-exclusion the mean wait is Σ over non-empty subsets T of (-1)^(|T|+1) / Σ_{i∈T} p_i,
    which is 1/p for a single split.
    """
    total = 0.0
    for size in range(1, len(probabilities) + 1):
        for subset in combinations(probabilities, size):
            total += (-1) ** (size + 1) / sum(subset)
    return total


def missing_splits_message(label: str, group_count: int, missing: list[str], fractions: dict[str, float]) -> str:
    """The warning for a class with no group in ``missing`` splits: counts, why, and how many more groups."""
    either, both = " or ".join(missing), " and ".join(missing)
    chances = " and ".join(f"in {name} with probability {fractions[name]:.2f}" for name in missing)
    more = math.ceil(expected_groups_until_present([fractions[name] for name in missing]))
    hold, each = ("hold", "each ") if len(missing) > 1 else ("holds", "")
    return (
        f"class {label!r} has {group_count} group(s) and none of them falls in {either}, so {both} {hold} no "
        f"{label!r} sample; nothing is moved, because a sample's split depends on its group key alone. "
        f"Each new group lands {chances}, so expect about {more} more group(s) of {label!r} on average "
        f"(possibly more) before {both} {each}{hold} one."
    )


def _check_class_sizes(samples: tuple[Sample, ...] | list[Sample], labels: list[str], min_per_class: int) -> None:
    """DataError naming the first class with fewer than ``min_per_class`` samples."""
    counts = Counter(sample.label for sample in samples)
    for label in labels:
        if counts[label] < min_per_class:
            raise DataError(
                f"class {label!r} has {counts[label]} sample(s); at least {min_per_class} are needed to train and "
                f"evaluate it (collect more, or drop the class from the label schema)"
            )


def _golden_groups_to_test(parts: dict[str, list[Sample]]) -> int:
    """Move every sample of a group holding a golden sample into test; returns how many non-golden ones moved."""
    golden_groups = {sample.group for part in parts.values() for sample in part if sample.golden}
    moved = 0
    for name in ("train", "val"):
        leaving = [sample for sample in parts[name] if sample.group in golden_groups]
        if leaving:
            parts[name] = [sample for sample in parts[name] if sample.group not in golden_groups]
            parts["test"].extend(leaving)
            moved += sum(not sample.golden for sample in leaving)
    return moved


def split_samples(
    samples: tuple[Sample, ...] | list[Sample],
    labels: list[str],
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    min_per_class: int = 5,
    seed: str = "",
) -> Split:
    """Split by group key, golden samples and their groups to test (see the module docstring); warn where a
    class misses a split.

    Raises DataError naming the class and its count when a class has fewer than ``min_per_class``
    samples (it could not be trained and evaluated).
    """
    try:
        check_fractions(val_fraction, test_fraction)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    _check_class_sizes(samples, labels, min_per_class)
    order = {label: i for i, label in enumerate(labels)}
    parts: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    for sample in samples:
        parts[split_of(sample.group, val_fraction, test_fraction, seed)].append(sample)
    pulled = _golden_groups_to_test(parts)
    for part in parts.values():
        part.sort(key=lambda s: (order[s.label], s.id))
    split = Split(train=tuple(parts["train"]), val=tuple(parts["val"]), test=tuple(parts["test"]))
    fractions = {"train": 1.0 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
    warnings = []
    if pulled:
        warnings.append(
            f"{pulled} sample(s) that are not golden go to test because their group holds a golden sample "
            "(a group never straddles splits); take the group out of the golden set on the agent to train on them"
        )
    for label, per_split in split.class_groups(labels).items():
        missing = [name for name in ("test", "val", "train") if fractions[name] > 0 and per_split[name] == 0]
        if missing:
            warnings.append(missing_splits_message(label, sum(per_split.values()), missing, fractions))
    for warning in warnings:
        log.warning(warning)
    return Split(split.train, split.val, split.test, tuple(warnings))


def report_lines(summary: dict, sizes: dict[str, dict[str, int]], shown: int = 20) -> list[str]:
    """Markdown for the run report from :meth:`Split.summary` and :meth:`Split.sizes`: groups per split and class."""
    lines = ["", "## Split by group", ""]
    for name in SPLITS:
        groups = summary["groups"][name]
        names = ", ".join(f"`{key}`" for key in groups["names"][:shown])
        rest = groups["count"] - min(shown, groups["count"])
        more = f" and {rest} more (all in metrics.json)" if rest else ""
        lines.append(f"- {name}: {groups['count']} group(s), {sizes[name]['total']} sample(s): {names}{more}")
    if summary.get("golden"):
        lines.append(f"- golden: {summary['golden']} sample(s) of the station's frozen evaluation set, all in test")
    lines += ["", "| class | train groups | val groups | test groups |", "|---|---|---|---|"]
    for label, per in summary["per_class"].items():
        lines.append(f"| {label} | {per['train']} | {per['val']} | {per['test']} |")
    lines += [""] + [f"- **warning**: {warning}" for warning in summary["warnings"]]
    return lines
