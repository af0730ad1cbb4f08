"""Dataset manifest: what an agent exports and a trainer consumes."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field

from shared_schema.errors import SchemaError, join_path, optional, require
from shared_schema.labels import LabelSchema

FORMAT_NAME = "rdk-weld-dataset"
FORMAT_VERSION = "1.2"  # 1.1: optional per-sample "group"; 1.2: optional per-sample "golden"
SUPPORTED_MAJOR = 1

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
SAMPLE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,127}$")
DEPTH_UNIT = "mm"  # depth files are 16-bit PNG, millimetres, 0 = no reading
GROUP_MAX_LENGTH = 64


def check_group(value: object, where: str) -> str:
    """``value`` if it is a valid group key; SchemaError naming ``where`` otherwise.

    A group key is a part, weld or run id: 1 to 64 printable characters, no surrounding spaces.
    """
    if not isinstance(value, str):
        raise SchemaError(where, f"expected str, got {type(value).__name__}")
    if not value or len(value) > GROUP_MAX_LENGTH:
        raise SchemaError(where, f"must be 1 to {GROUP_MAX_LENGTH} characters, got {len(value)}")
    if not value.isprintable() or value != value.strip():
        raise SchemaError(where, f"{value[:80]!r} must be printable characters without surrounding spaces")
    return value


@dataclass(frozen=True)
class FileRef:
    """One stored file of a sample, relative to the dataset root."""

    path: str
    sha256: str
    bytes: int

    def to_dict(self) -> dict:
        """Return the JSON form."""
        return {"path": self.path, "sha256": self.sha256, "bytes": self.bytes}

    @classmethod
    def from_dict(cls, data: dict, where: str) -> FileRef:
        """Parse and validate one file reference."""
        path = require(data, "path", str, where)
        if not is_safe_relpath(path):
            raise SchemaError(join_path(where, "path"), f"{path!r} must be a relative path inside the dataset")
        sha = require(data, "sha256", str, where)
        if not SHA256_RE.match(sha):
            raise SchemaError(join_path(where, "sha256"), "expected 64 lowercase hex characters")
        size = require(data, "bytes", int, where)
        if size < 0:
            raise SchemaError(join_path(where, "bytes"), "must not be negative")
        return cls(path=path, sha256=sha, bytes=size)


@dataclass(frozen=True)
class SampleRecord:
    """One labelled capture: its files (rgb, optional depth), its group (the split unit) and free metadata.

    ``group`` names the part, weld or run the capture belongs to; samples of one group always land
    in the same split (see :mod:`shared_schema.split`). None: the sample is its own group.
    ``golden``: the sample belongs to the frozen evaluation set; a trainer tests on it and never trains on it.
    """

    id: str
    label: str
    captured_at: str
    width: int
    height: int
    rgb: FileRef
    depth: FileRef | None = None
    meta: dict = field(default_factory=dict)
    group: str | None = None
    golden: bool = False

    def files(self) -> list[FileRef]:
        """The sample's files, rgb first."""
        return [self.rgb] + ([self.depth] if self.depth else [])

    def to_dict(self) -> dict:
        """Return the JSON form (``group`` only when set, ``golden`` only when true)."""
        files = {"rgb": self.rgb.to_dict()}
        if self.depth is not None:
            files["depth"] = self.depth.to_dict()
        out = {
            "id": self.id,
            "label": self.label,
            "captured_at": self.captured_at,
            "width": self.width,
            "height": self.height,
            "files": files,
            "meta": self.meta,
        }
        if self.group is not None:
            out["group"] = self.group
        if self.golden:
            out["golden"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict, where: str) -> SampleRecord:
        """Parse and validate one sample record."""
        sample_id = require(data, "id", str, where)
        if not SAMPLE_ID_RE.match(sample_id):
            raise SchemaError(join_path(where, "id"), f"{sample_id!r} is not a valid sample id")
        where = f"{where}(id={sample_id})"
        files = require(data, "files", dict, where)
        files_at = join_path(where, "files")
        depth_raw = optional(files, "depth", dict, files_at)
        width = require(data, "width", int, where)
        height = require(data, "height", int, where)
        if width <= 0 or height <= 0:
            raise SchemaError(join_path(where, "width"), "width and height must be positive")
        group = data.get("group")
        return cls(
            id=sample_id,
            label=require(data, "label", str, where),
            captured_at=require(data, "captured_at", str, where),
            width=width,
            height=height,
            rgb=FileRef.from_dict(require(files, "rgb", dict, files_at), join_path(files_at, "rgb")),
            depth=FileRef.from_dict(depth_raw, join_path(files_at, "depth")) if depth_raw else None,
            meta=optional(data, "meta", dict, where, default={}),
            group=None if group is None else check_group(group, join_path(where, "group")),
            golden=optional(data, "golden", bool, where, default=False),
        )


@dataclass(frozen=True)
class DatasetManifest:
    """The whole exported dataset: identity, label schema and sample records."""

    dataset_id: str
    created_at: str
    agent: dict
    label_schema: LabelSchema
    samples: tuple[SampleRecord, ...]
    format: str = FORMAT_NAME
    format_version: str = FORMAT_VERSION

    def to_dict(self) -> dict:
        """Return the JSON form."""
        return {
            "format": self.format,
            "format_version": self.format_version,
            "dataset_id": self.dataset_id,
            "created_at": self.created_at,
            "agent": self.agent,
            "label_schema": self.label_schema.to_dict(),
            "samples": [s.to_dict() for s in self.samples],
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialise to JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, sort_keys=False)

    def counts(self) -> dict[str, int]:
        """Samples per label, in schema order, zero counts included."""
        out = {name: 0 for name in self.label_schema.names}
        for sample in self.samples:
            out[sample.label] += 1
        return out

    @classmethod
    def from_dict(cls, data: dict) -> DatasetManifest:
        """Parse and validate; unknown major versions and unknown labels are refused."""
        fmt = require(data, "format", str, "")
        if fmt != FORMAT_NAME:
            raise SchemaError("format", f"expected {FORMAT_NAME!r}, got {fmt!r}")
        version = require(data, "format_version", str, "")
        major = version.split(".", 1)[0]
        if not major.isdigit() or int(major) != SUPPORTED_MAJOR:
            raise SchemaError(
                "format_version",
                f"manifest version {version} is not supported (this reader handles {SUPPORTED_MAJOR}.x); "
                "upgrade shared_schema on this side",
            )
        schema = LabelSchema.from_dict(require(data, "label_schema", dict, ""), where="label_schema")
        samples = []
        seen: set[str] = set()
        for i, raw in enumerate(require(data, "samples", list, "")):
            sample = SampleRecord.from_dict(raw, f"samples[{i}]")
            if sample.label not in schema:
                raise SchemaError(
                    f"samples[{i}](id={sample.id}).label",
                    f"{sample.label!r} is not in the label schema ({', '.join(schema.names)})",
                )
            if sample.id in seen:
                raise SchemaError(f"samples[{i}].id", f"duplicate sample id {sample.id!r}")
            seen.add(sample.id)
            samples.append(sample)
        return cls(
            dataset_id=require(data, "dataset_id", str, ""),
            created_at=require(data, "created_at", str, ""),
            agent=require(data, "agent", dict, ""),
            label_schema=schema,
            samples=tuple(samples),
            format=fmt,
            format_version=version,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> DatasetManifest:
        """Parse JSON text; malformed JSON is a SchemaError too."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SchemaError("", f"manifest is not valid JSON: {exc}") from None
        return cls.from_dict(data)


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks: what a FileRef's ``sha256`` holds."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def is_safe_relpath(path: str) -> bool:
    """True for a forward-slash relative path with no '..', empty or absolute parts."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))
