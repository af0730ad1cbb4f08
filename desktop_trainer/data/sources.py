"""Resolve ``data.source`` (agent URLs, archives, folders; one or several) into one LocalDataset."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from desktop_trainer.data.agent import is_agent_url, sync_agent
from desktop_trainer.data.archive import MANIFEST_NAME, is_archive, load_archive, load_manifest_dir
from desktop_trainer.data.cache import ObjectCache
from desktop_trainer.data.folder import load_folder
from desktop_trainer.data.samples import DataError, LocalDataset, merge


def resolve_sources(
    source: str | Sequence[str] | None,
    cache_dir: str | Path,
    glob: str = "*",
    labels: Sequence[str] | None = None,
    token: str | None = None,
    progress: bool = True,
    group_by: str = "none",
) -> LocalDataset:
    """Load every source and merge them (label schemas must match); ``group_by`` applies to folders."""
    if not source:
        raise DataError("data.source is not set: give an agent URL, an exported .tar/.tar.gz or a class folder")
    sources = [source] if isinstance(source, str) else list(source)
    cache = ObjectCache(cache_dir)
    loaded = []
    for item in sources:
        item = str(item)
        if is_agent_url(item):
            loaded.append(sync_agent(item, cache, token=token, progress=progress))
        elif is_archive(item):
            loaded.append(load_archive(item, cache))
        elif (Path(item) / MANIFEST_NAME).is_file():
            loaded.append(load_manifest_dir(item, cache))
        elif Path(item).is_dir():
            loaded.append(load_folder(item, glob=glob, labels=list(labels) if labels else None, group_by=group_by))
        else:
            raise DataError(f"data source {item!r} is not an agent URL, a .tar/.tar.gz archive or a folder")
    return merge(loaded)
