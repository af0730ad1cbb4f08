"""Errors raised by shared_schema validation."""

from __future__ import annotations

from typing import TypeVar, overload

T = TypeVar("T")


class SchemaError(ValueError):
    """A document does not match its schema; ``field`` names the offending path."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


def require(obj: dict, key: str, kind: type[T] | tuple[type[T], ...], where: str) -> T:
    """Return ``obj[key]`` checked against ``kind``; raise SchemaError naming ``where.key``.

    The result is typed as ``kind`` (the common type of a tuple of kinds, e.g. float for int or float).
    """
    path = join_path(where, key)
    if not isinstance(obj, dict):
        raise SchemaError(where or "<root>", f"expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise SchemaError(path, "missing required field")
    value = obj[key]
    # bool is an int subclass; never accept it where a number is meant.
    if isinstance(value, bool) and bool not in _as_tuple(kind):
        raise SchemaError(path, f"expected {_kind_name(kind)}, got bool")
    if not isinstance(value, kind):
        raise SchemaError(path, f"expected {_kind_name(kind)}, got {type(value).__name__}")
    return value


@overload
def optional(obj: dict, key: str, kind: type[T] | tuple[type[T], ...], where: str) -> T | None: ...


@overload
def optional(obj: dict, key: str, kind: type[T] | tuple[type[T], ...], where: str, default: T) -> T: ...


def optional(
    obj: dict, key: str, kind: type[T] | tuple[type[T], ...], where: str, default: T | None = None
) -> T | None:
    """Like :func:`require` but returns ``default`` when the key is absent or null."""
    if obj.get(key) is None:
        return default
    return require(obj, key, kind, where)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def join_path(where: str, key: str) -> str:
    """Join a field path: ``join_path("samples[2]", "label") == "samples[2].label"``."""
    return f"{where}.{key}" if where else key
