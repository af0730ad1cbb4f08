"""The camera interface every source implements: Frame, CameraSource, CameraError."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np


class CameraError(RuntimeError):
    """The camera is unavailable or returned no frame."""


@dataclass
class Frame:
    """One captured frame: BGR image, optional depth in millimetres (0 = no reading), metadata."""

    rgb: np.ndarray
    depth: np.ndarray | None
    timestamp: float
    meta: dict = field(default_factory=dict)


class CameraSource(ABC):
    """A source of frames."""

    @abstractmethod
    def read(self) -> Frame:
        """Return the current frame; raise CameraError when the camera is unavailable."""

    @abstractmethod
    def status(self) -> dict:
        """Return a JSON-able description of the source and its health."""

    @abstractmethod
    def close(self) -> None:
        """Release the device."""
