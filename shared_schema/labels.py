"""Label schema: the ordered classes of a station, bound to models by a stable hash."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from shared_schema.errors import SchemaError, join_path, optional, require

LABEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
HEX_COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Label:
    """One class of the schema."""

    name: str
    is_defect: bool = True
    key: str | None = None
    colour: str | None = None
    description: str = ""

    def to_dict(self) -> dict:
        """Return the JSON form of this label."""
        out: dict = {"name": self.name, "is_defect": self.is_defect}
        if self.key is not None:
            out["key"] = self.key
        if self.colour is not None:
            out["colour"] = self.colour
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class LabelSchema:
    """Ordered labels plus a name and version; ``hash`` binds a model's outputs to it."""

    name: str
    labels: tuple[Label, ...]
    version: int = 1
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        _validate_labels(self.labels)

    @property
    def names(self) -> list[str]:
        """Label names in output order."""
        return [label.name for label in self.labels]

    @property
    def hash(self) -> str:
        """Stable sha256 over what binds a model: the label names in order."""
        payload = json.dumps({"labels": self.names}, separators=(",", ":"))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def index(self, name: str) -> int:
        """Position of ``name`` in output order; KeyError naming the known labels otherwise."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown label {name!r}; known labels: {', '.join(self.names)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def get(self, name: str) -> Label:
        """The label called ``name``."""
        return self.labels[self.index(name)]

    def to_dict(self) -> dict:
        """Return the JSON form, including the hash for readers that only compare."""
        return {
            "name": self.name,
            "version": self.version,
            "labels": [label.to_dict() for label in self.labels],
            "hash": self.hash,
        }

    @classmethod
    def from_dict(cls, data: dict, where: str = "label_schema") -> LabelSchema:
        """Parse and validate; a stated ``hash`` must match the computed one."""
        name = require(data, "name", str, where)
        version = optional(data, "version", int, where, default=1)
        raw_labels = require(data, "labels", list, where)
        labels = []
        for i, raw in enumerate(raw_labels):
            at = join_path(where, f"labels[{i}]")
            if isinstance(raw, str):
                raw = {"name": raw}
            labels.append(
                Label(
                    name=require(raw, "name", str, at),
                    is_defect=optional(raw, "is_defect", bool, at, default=True),
                    key=optional(raw, "key", str, at),
                    colour=optional(raw, "colour", str, at),
                    description=optional(raw, "description", str, at, default=""),
                )
            )
        try:
            schema = cls(name=name, version=version, labels=tuple(labels))
        except SchemaError as exc:
            raise SchemaError(join_path(where, exc.field), exc.message) from None
        stated = data.get("hash")
        if stated is not None and stated != schema.hash:
            raise SchemaError(
                join_path(where, "hash"), f"stated hash {stated!r} does not match labels (expected {schema.hash})"
            )
        return schema


def _validate_labels(labels: tuple[Label, ...]) -> None:
    if len(labels) < 2:
        raise SchemaError("labels", "a schema needs at least two labels")
    seen_names: set[str] = set()
    seen_keys: set[str] = set()
    for i, label in enumerate(labels):
        at = f"labels[{i}]"
        if not isinstance(label.name, str) or not LABEL_NAME_RE.match(label.name):
            raise SchemaError(
                f"{at}.name",
                f"{label.name!r} is not a valid label name (lowercase letters, digits, '_' or '-', at most 64)",
            )
        if label.name in seen_names:
            raise SchemaError(f"{at}.name", f"duplicate label {label.name!r}")
        seen_names.add(label.name)
        if label.key is not None:
            if len(label.key) != 1 or not label.key.isprintable() or label.key.isspace():
                raise SchemaError(f"{at}.key", f"key binding must be one printable character, got {label.key!r}")
            if label.key in seen_keys:
                raise SchemaError(f"{at}.key", f"key {label.key!r} is bound twice")
            seen_keys.add(label.key)
        if label.colour is not None and not HEX_COLOUR_RE.match(label.colour):
            raise SchemaError(f"{at}.colour", f"expected #rrggbb, got {label.colour!r}")


def default_weld_schema() -> LabelSchema:
    """The original design's weld labels, bound to keys 1-5."""
    return LabelSchema(
        name="weld",
        version=1,
        labels=(
            Label("good", is_defect=False, key="1", colour="#2e7d32", description="Sound bead"),
            Label("porosity", key="2", colour="#c62828", description="Round pores on the bead"),
            Label("spatter", key="3", colour="#ef6c00", description="Droplets on the base metal"),
            Label("gap", key="4", colour="#6a1b9a", description="Break or missing bead"),
            Label("undercut", key="5", colour="#1565c0", description="Groove along a bead edge"),
        ),
    )


def load_label_schema(path: str | Path) -> LabelSchema:
    """Load a station's label schema from a JSON or YAML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaError("", f"cannot read label schema {path}: {exc.strerror}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # optional: only stations that write YAML need PyYAML
        except ImportError:
            raise SchemaError("", f"{path} is YAML but PyYAML is missing: pip install pyyaml, or use JSON") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SchemaError("", f"{path} is not valid YAML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaError("", f"{path} is not valid JSON: {exc}") from None
    return LabelSchema.from_dict(data, where="")


def label_schema_from_names(names: list[str], name: str = "custom") -> LabelSchema:
    """A schema from bare names: the first is the non-defect class, keys 1-9 in order."""
    labels = tuple(Label(n, is_defect=i != 0, key=str(i + 1) if i < 9 else None) for i, n in enumerate(names))
    return LabelSchema(name=name, labels=labels)
