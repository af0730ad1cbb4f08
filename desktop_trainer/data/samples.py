"""The trainer's view of a dataset: a label schema plus samples with local file paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shared_schema import LabelSchema


class DataError(RuntimeError):
    """A dataset cannot be used for training; the message says which sample, class or file."""


@dataclass(frozen=True)
class Sample:
    """One labelled image on local disk, with optional depth, group key and free metadata.

    ``golden``: part of the station's frozen evaluation set; always tested on, never trained on.
    """

    id: str
    label: str
    rgb_path: Path
    depth_path: Path | None = None
    meta: dict = field(default_factory=dict, compare=False)
    group_key: str | None = None  # the manifest's ``group`` or the folder source's run subfolder
    golden: bool = False

    @property
    def group(self) -> str:
        """The split unit: ``group_key``, else meta["group"] (older manifests), else the sample id."""
        if self.group_key:
            return self.group_key
        group = self.meta.get("group")
        return str(group) if group not in (None, "") else self.id


@dataclass(frozen=True)
class LocalDataset:
    """A resolved dataset: where it came from, its schema and its samples."""

    schema: LabelSchema
    samples: tuple[Sample, ...]
    dataset_id: str
    sources: tuple[str, ...]

    def counts(self) -> dict[str, int]:
        """Samples per label in schema order (zero counts included)."""
        out = {name: 0 for name in self.schema.names}
        for sample in self.samples:
            out[sample.label] += 1
        return out

    @property
    def has_depth(self) -> bool:
        """True when every sample has a depth map."""
        return bool(self.samples) and all(s.depth_path is not None for s in self.samples)


def merge(datasets: list[LocalDataset]) -> LocalDataset:
    """Merge datasets from several stations; their label schemas must be identical."""
    if not datasets:
        raise DataError("no data source given (set data.source)")
    first = datasets[0]
    for other in datasets[1:]:
        if other.schema.hash != first.schema.hash:
            raise DataError(
                f"cannot merge {other.sources[0]} into {first.sources[0]}: label schemas differ "
                f"({', '.join(other.schema.names)} vs {', '.join(first.schema.names)})"
            )
    if len(datasets) == 1:
        return first
    samples: dict[Path, Sample] = {}
    for ds in datasets:
        for sample in ds.samples:  # the same image exported twice counts once, golden if either copy is
            kept = samples.get(sample.rgb_path)
            if kept is None or (sample.golden and not kept.golden):
                samples[sample.rgb_path] = sample
    return LocalDataset(
        schema=first.schema,
        samples=tuple(samples.values()),
        dataset_id="+".join(ds.dataset_id for ds in datasets),
        sources=tuple(src for ds in datasets for src in ds.sources),
    )
