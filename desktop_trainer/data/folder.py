"""A folder with one subfolder per class: images found recursively, filtered by a glob.

``group_by="subfolder"`` makes the first subfolder under each class folder a sample's group (the
split unit): ``good/run07/a.png`` and ``porosity/run07/b.png`` are both in group ``run07``, so one
production run never straddles train and test. A file directly in its class folder is its own group.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from desktop_trainer.data.samples import DataError, LocalDataset, Sample
from shared_schema import Label, LabelSchema

NON_DEFECT_WORDS = ("good", "ok", "free", "normal", "pass", "none", "clean")
DEPTH_SUFFIXES = ("_depth.png",)
GROUP_BY = ("none", "subfolder")


def label_name(folder: str) -> str:
    """A folder name as a valid label name: lowercase, other characters replaced by '_'."""
    name = re.sub(r"[^a-z0-9_\-]+", "_", folder.lower()).strip("_-")
    if not name:
        raise DataError(f"class folder {folder!r} does not give a usable label name")
    return name[:64]


def _is_non_defect(name: str) -> bool:
    return any(name == w or name.endswith(("_" + w, "-" + w)) for w in NON_DEFECT_WORDS)


def schema_for_folders(names: list[str], order: list[str] | None = None) -> LabelSchema:
    """Label schema for class folders: ``order`` when given, else the non-defect class first, then A-Z."""
    if order:
        missing = sorted(set(names) - set(order))
        if missing:
            raise DataError(f"class folders {', '.join(missing)} are not in data.labels ({', '.join(order)})")
        names = list(order)
    else:
        names = sorted(names, key=lambda n: (not _is_non_defect(n), n))
    labels = tuple(Label(n, is_defect=not _is_non_defect(n)) for n in names)
    return LabelSchema(name="folders", labels=labels)


def load_folder(
    root: str | Path, glob: str = "*", labels: list[str] | None = None, group_by: str = "none"
) -> LocalDataset:
    """Scan ``root/<class>/**/<glob>``; a sibling ``<stem>_depth.png`` is taken as the depth map.

    ``group_by``: ``none`` (each image is its own group) or ``subfolder`` (see the module docstring).
    """
    if group_by not in GROUP_BY:
        raise DataError(f"data.group_by must be one of {', '.join(GROUP_BY)}, got {group_by!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data source {root} is not a folder")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise DataError(f"{root} needs at least two class subfolders, found {len(class_dirs)}")
    by_label: dict[str, list[Sample]] = {}
    for class_dir in class_dirs:
        name = label_name(class_dir.name)
        if name in by_label:
            raise DataError(f"two class folders map to the same label {name!r} in {root}")
        files = sorted(p for p in class_dir.rglob(glob) if p.is_file() and not p.name.endswith(DEPTH_SUFFIXES))
        by_label[name] = [_sample(root, class_dir, p, name, group_by) for p in files]
    empty = [n for n, s in by_label.items() if not s]
    if empty:
        raise DataError(f"class {empty[0]!r} has 0 images matching {glob!r} under {root / empty[0]}")
    schema = schema_for_folders(list(by_label), labels)
    samples = tuple(s for name in schema.names for s in by_label.get(name, []))
    digest = hashlib.sha256("\n".join(s.id for s in samples).encode()).hexdigest()[:16]
    return LocalDataset(schema=schema, samples=samples, dataset_id=f"folder-{digest}", sources=(str(root),))


def _sample(root: Path, class_dir: Path, path: Path, label: str, group_by: str) -> Sample:
    depth = path.with_name(path.stem + "_depth.png")
    inside = path.relative_to(class_dir).parts
    return Sample(
        id=path.relative_to(root).as_posix(),
        label=label,
        rgb_path=path,
        depth_path=depth if depth.is_file() else None,
        group_key=inside[0] if group_by == "subfolder" and len(inside) > 1 else None,
    )
