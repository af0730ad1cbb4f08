"""AgentConfig: every setting of the agent, from defaults, a JSON config file, the environment and CLI flags.

Precedence, lowest first: dataclass defaults, the ``--config`` JSON file, ``RDK_AGENT_<FIELD>``
environment variables (e.g. ``RDK_AGENT_PORT=8090``), then command-line flags.
The ``inspection`` and ``rubric`` sections are free-form and interpreted by ``rdk_agent.inspection``; the
``stereo`` section (``working_width`` and the depth settings) by ``rdk_agent.camera.stereo.source``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "RDK_AGENT_"
MiB = 1024 * 1024


class ConfigError(ValueError):
    """A setting is invalid; the message says which and how to fix it."""


@dataclass
class AgentConfig:
    """Settings of one agent instance."""

    data_dir: Path = Path("data")
    camera: str = "synthetic"
    calibration: Path | None = None  # stereo calibration file; None = <data_dir>/stereo_calibration.json
    host: str = "127.0.0.1"
    port: int = 8080
    labels: Path | None = None  # label schema JSON/YAML; None = the default weld schema
    models_dir: Path | None = None  # None = <data_dir>/models
    seed: int = 0  # synthetic camera seed
    max_upload_bytes: int = 32 * MiB  # bigger request bodies get 413
    max_buffered_bytes: int = 128 * MiB  # request bodies being received at once, all connections; more get 503
    max_meta_bytes: int = 64 * 1024  # a capture's ``meta`` as JSON text
    max_image_pixels: int = 40_000_000  # decompression-bomb guard for uploads
    free_space_reserve_bytes: int = 256 * MiB  # captures that would go below this get 507
    target_per_class: int = 100
    stream_fps: float = 10.0
    max_streams: int = 4  # concurrent MJPEG viewers (each holds one server thread)
    threads: int = 16  # waitress worker threads
    connection_limit: int = 64
    verify_on_start: bool = True  # sha256 of every stored file at start-up
    inspection: dict = field(default_factory=dict)
    rubric: dict = field(default_factory=dict)
    stereo: dict = field(default_factory=dict)  # working_width and depth settings of a stereo: camera

    def __post_init__(self) -> None:
        # Absolute once, here: Flask resolves a relative file path against the package folder, not the cwd.
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        self.labels = Path(self.labels).expanduser().resolve() if self.labels else None
        self.models_dir = Path(self.models_dir).expanduser().resolve() if self.models_dir else self.data_dir / "models"
        self.calibration = (
            Path(self.calibration).expanduser().resolve()
            if self.calibration
            else self.data_dir / "stereo_calibration.json"
        )
        self.validate()

    @property
    def models_path(self) -> Path:
        """The models folder: ``models_dir`` as resolved at construction, ``<data_dir>/models`` by default."""
        return self.models_dir if self.models_dir is not None else self.data_dir / "models"

    def validate(self) -> None:
        """Range-check numeric settings."""
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range 0-65535")
        positive = (
            "max_upload_bytes",
            "max_meta_bytes",
            "max_image_pixels",
            "target_per_class",
            "threads",
            "connection_limit",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_buffered_bytes < self.max_upload_bytes:
            raise ConfigError(
                f"max_buffered_bytes ({self.max_buffered_bytes}) must be at least max_upload_bytes "
                f"({self.max_upload_bytes}), or no upload of the largest size could be received"
            )
        if self.free_space_reserve_bytes < 0:
            raise ConfigError("free_space_reserve_bytes must not be negative")
        if not 0 < self.stream_fps <= 60:
            raise ConfigError(f"stream_fps must be in (0, 60], got {self.stream_fps}")
        if self.max_streams < 1 or self.max_streams >= self.threads:
            raise ConfigError(f"max_streams must be between 1 and threads-1 ({self.threads - 1})")

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of all settings."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def build(cls, file: Path | None = None, env: dict[str, str] | None = None, **overrides) -> AgentConfig:
        """Merge a JSON config file, the environment and explicit overrides (None values are ignored)."""
        values: dict = {}
        if file is not None:
            values.update(load_config_file(file))
        values.update(_from_env(os.environ if env is None else env))
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None


def load_config_file(path: Path) -> dict:
    """Read a JSON config file whose keys are AgentConfig fields."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object")
    unknown = sorted(set(data) - set(AgentConfig.field_names()))
    if unknown:
        known = ", ".join(AgentConfig.field_names())
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}; known: {known}")
    return data


def _from_env(env) -> dict:
    types = {f.name: f.type for f in dataclasses.fields(AgentConfig)}
    out: dict = {}
    for name, kind in types.items():
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is None or name in ("inspection", "rubric", "stereo"):
            continue
        try:
            if kind == "int":
                out[name] = int(raw)
            elif kind == "float":
                out[name] = float(raw)
            elif kind == "bool":
                out[name] = raw.strip().lower() in ("1", "true", "yes", "on")
            else:
                out[name] = raw
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
    return out
