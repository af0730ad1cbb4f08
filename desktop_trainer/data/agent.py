"""Incremental, verified, resumable sync of an agent's dataset over its HTTP export API."""

from __future__ import annotations

import os

import requests
from tqdm import tqdm

from desktop_trainer.data.cache import ObjectCache, dataset_from_manifest
from desktop_trainer.data.samples import DataError, LocalDataset
from shared_schema import DatasetManifest, FileRef, SampleRecord, SchemaError

TOKEN_ENV = "RDK_AGENT_TOKEN"


def is_agent_url(source: str) -> bool:
    """True for an http(s) URL."""
    return source.startswith(("http://", "https://"))


class AgentClient:
    """Talks to one agent's /api/v1/dataset endpoints with its bearer token."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        token = token or os.environ.get(TOKEN_ENV)
        if not token:
            raise DataError(f"agent {self.url} needs its API token: set data.token or the {TOKEN_ENV} variable")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def _get(self, path: str, **kwargs) -> requests.Response:
        try:
            response = self.session.get(f"{self.url}/api/v1/{path}", timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise DataError(f"cannot reach agent {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise DataError(f"agent {self.url} answered {response.status_code} for {path}: {_error_text(response)}")
        return response

    def manifest(self) -> DatasetManifest:
        """The agent's current dataset manifest."""
        data = self._get("dataset/manifest").json()
        try:
            return DatasetManifest.from_dict(data.get("manifest", data))
        except SchemaError as exc:
            raise DataError(f"agent {self.url} sent an invalid manifest: {exc}") from None

    def download(self, ref: FileRef, part, progress: tqdm) -> None:
        """Append ``ref``'s bytes to ``part``, resuming with an HTTP Range from its current size."""
        offset = part.stat().st_size if part.exists() else 0
        if offset >= ref.bytes:  # complete (or overlong) already: let verification decide
            return
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        with self._get(f"dataset/files/{ref.sha256}", headers=headers, stream=True) as response:
            mode = "ab" if offset and response.status_code == 206 else "wb"
            if mode == "wb" and offset:
                progress.update(-offset)
            with open(part, mode) as fh:
                for chunk in response.iter_content(1 << 16):
                    fh.write(chunk)
                    progress.update(len(chunk))


def sync_agent(url: str, cache: ObjectCache, token: str | None = None, progress: bool = True) -> LocalDataset:
    """Download the files of the agent's manifest that the cache lacks, each verified by sha256.

    A file that fails verification is fetched once more from scratch; a second failure is a
    DataError naming the sample. An interrupted download resumes from its ``.part`` file.
    """
    client = AgentClient(url, token)
    manifest = client.manifest()
    todo = cache.missing(manifest)
    total = sum(ref.bytes for _, ref in todo)
    done = sum(cache.part_path(ref).stat().st_size for _, ref in todo if cache.part_path(ref).exists())
    with tqdm(
        total=total,
        initial=done,
        unit="B",
        unit_scale=True,
        desc=f"sync {client.url}",
        disable=not progress or not todo,
    ) as bar:
        for sample, ref in todo:
            _fetch_verified(client, cache, sample, ref, bar)
    return dataset_from_manifest(manifest, cache, client.url)


def _fetch_verified(client: AgentClient, cache: ObjectCache, sample: SampleRecord, ref: FileRef, bar: tqdm) -> None:
    part = cache.part_path(ref)
    part.parent.mkdir(parents=True, exist_ok=True)
    for _attempt in range(2):
        client.download(ref, part, bar)
        if cache.commit(ref, part):  # a bad file is deleted, so the retry starts from byte 0
            return
        bar.update(-ref.bytes)
    raise DataError(
        f"sample {sample.id} ({ref.path}) from {client.url} failed sha256 verification twice "
        f"(expected {ref.sha256}); the agent's copy may be corrupt"
    )


def _error_text(response: requests.Response) -> str:
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
