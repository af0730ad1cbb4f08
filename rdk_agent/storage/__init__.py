"""Capture storage: files under the data dir, a SQLite index, reconciliation and dataset export."""

from __future__ import annotations

from rdk_agent.storage.audit import Actor, AuditEntry
from rdk_agent.storage.golden import GoldenSample
from rdk_agent.storage.groups import InvalidGroup
from rdk_agent.storage.index import CaptureRecord
from rdk_agent.storage.store import (
    CaptureNotFound,
    CaptureStore,
    InsufficientStorage,
    StoreLocked,
    UnknownLabel,
)

__all__ = [
    "Actor",
    "AuditEntry",
    "CaptureNotFound",
    "CaptureRecord",
    "CaptureStore",
    "GoldenSample",
    "InsufficientStorage",
    "InvalidGroup",
    "StoreLocked",
    "UnknownLabel",
]
