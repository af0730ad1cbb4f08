"""A small thread-safe metrics registry rendered in the Prometheus text format 0.0.4.

Counters, gauges (set or computed at scrape time) and histograms with labels. Hand-written so
the board needs no extra dependency; the format is the one documented at
https://prometheus.io/docs/instrumenting/exposition_formats/.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_INF_LE = 'le="+Inf"'
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Captures per label (None = unlabelled) and their total bytes, e.g. SampleIndex.counts
DatasetCounts = Callable[[], tuple[Mapping[str | None, int], int]]
# The champion and challenger versions (``rdk_agent.inspection.registry``), e.g. ModelCycle.metrics
ModelScores = Callable[[], Mapping[str, dict | None]]
MODEL_ROLES = ("champion", "challenger")


def _escape_label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _fmt_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels_text(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


V = TypeVar("V")


class _Metric(Generic[V]):
    """One named metric; ``V`` is what a series holds."""

    kind = ""

    def __init__(self, name: str, help_text: str, labelnames: Iterable[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()
        self._values: dict[tuple[str, ...], V] = {}

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {sorted(labels)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:
        """The metric's lines of Prometheus text."""
        raise NotImplementedError


class Counter(_Metric[float]):
    """A monotonically increasing count per label set."""

    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` (non-negative) to the series named by ``labels``."""
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        """Current value of one series (0 when never incremented)."""
        with self._lock:
            return float(self._values.get(self._key(labels), 0.0))

    def samples(self) -> dict[tuple[str, ...], float]:
        """A copy of every series."""
        with self._lock:
            return dict(self._values)

    def render(self) -> list[str]:
        lines = self.header()
        for key, value in sorted(self.samples().items()):
            lines.append(f"{self.name}{_labels_text(self.labelnames, key)} {_fmt_value(value)}")
        return lines


class Gauge(_Metric[float]):
    """A value that goes up and down; ``collect`` computes every series at scrape time instead."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help_text: str,
        labelnames: Iterable[str] = (),
        collect: Callable[[], dict[tuple[str, ...], float]] | None = None,
    ) -> None:
        super().__init__(name, help_text, labelnames)
        self.collect = collect

    def set(self, value: float, **labels: str) -> None:
        """Set the series named by ``labels``."""
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def render(self) -> list[str]:
        lines = self.header()
        if self.collect is not None:
            values = self.collect()
        else:
            with self._lock:
                values = dict(self._values)
        for key, value in sorted(values.items()):
            lines.append(f"{self.name}{_labels_text(self.labelnames, key)} {_fmt_value(value)}")
        return lines


@dataclass
class _HistogramSeries:
    buckets: list[int]
    total: float = 0.0
    count: int = 0


class Histogram(_Metric[_HistogramSeries]):
    """Cumulative buckets, sum and count per label set."""

    kind = "histogram"

    def __init__(
        self, name: str, help_text: str, labelnames: Iterable[str] = (), buckets: Iterable[float] = LATENCY_BUCKETS_S
    ) -> None:
        super().__init__(name, help_text, labelnames)
        self.buckets = tuple(sorted(float(b) for b in buckets))

    def observe(self, value: float, **labels: str) -> None:
        """Record one observation."""
        key = self._key(labels)
        with self._lock:
            series = self._values.setdefault(key, _HistogramSeries([0] * len(self.buckets)))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    series.buckets[i] += 1
            series.total += value
            series.count += 1

    def count(self, **labels: str) -> int:
        """Number of observations in one series."""
        with self._lock:
            series = self._values.get(self._key(labels))
            return series.count if series else 0

    def render(self) -> list[str]:
        lines = self.header()
        with self._lock:
            snapshot = {k: (list(v.buckets), v.total, v.count) for k, v in self._values.items()}
        for key, (counts, total, n) in sorted(snapshot.items()):
            for bound, c in zip(self.buckets, counts, strict=True):
                le = f'le="{_fmt_value(bound)}"'
                lines.append(f"{self.name}_bucket{_labels_text(self.labelnames, key, le)} {c}")
            lines.append(f"{self.name}_bucket{_labels_text(self.labelnames, key, _INF_LE)} {n}")
            lines.append(f"{self.name}_sum{_labels_text(self.labelnames, key)} {_fmt_value(total)}")
            lines.append(f"{self.name}_count{_labels_text(self.labelnames, key)} {n}")
        return lines


M = TypeVar("M", bound=_Metric[Any])


class Registry:
    """Named metrics rendered together."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric[Any]] = {}
        self._lock = threading.Lock()

    def register(self, metric: M) -> M:
        """Add ``metric``; a second metric with the same name is an error."""
        with self._lock:
            if metric.name in self._metrics:
                raise ValueError(f"metric {metric.name} is already registered")
            self._metrics[metric.name] = metric
        return metric

    def render(self) -> str:
        """The whole registry as Prometheus text."""
        with self._lock:
            metrics = list(self._metrics.values())
        lines: list[str] = []
        for metric in metrics:
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


def _golden_value(key: str, version: dict) -> float | None:
    return (version.get("golden") or {}).get(key)


def _shadow_value(key: str, version: dict) -> float | None:
    return version["shadow"][key]


class Telemetry:
    """The agent's metrics. Other services call the ``record_*`` methods; the API reads ``model_counters()``.

    ``dataset_counts`` feeds the dataset gauges at scrape time (they stay empty without it).
    """

    def __init__(self, dataset_counts: DatasetCounts | None = None) -> None:
        self._dataset_counts = dataset_counts
        self.registry = Registry()
        reg = self.registry.register
        self.inspect_latency = reg(
            Histogram("rdk_inspection_latency_seconds", "End-to-end inspection latency by deciding engine", ("engine",))
        )
        self.inspections = reg(
            Counter("rdk_inspections_total", "Inspections by deciding engine and label", ("engine", "label"))
        )
        self.fallbacks = reg(
            Counter("rdk_inspection_fallbacks_total", "Inspections decided by the rules, by reason", ("reason",))
        )
        self.review_queued = reg(Counter("rdk_review_queued_total", "Low-confidence frames saved for review"))
        self.captures = reg(Counter("rdk_captures_total", "Captures stored, by label", ("label",)))
        self.model_reloads = reg(Counter("rdk_model_reloads_total", "Model loads that passed the checks and went live"))
        self.model_failures = reg(
            Counter("rdk_model_load_failures_total", "Model files refused, by reason code", ("code",))
        )
        self.model_active = reg(Gauge("rdk_model_active", "1 while an ONNX model serves, else 0"))
        self.dataset_samples = reg(
            Gauge("rdk_dataset_samples", "Stored samples by label", ("label",), collect=self._samples_by_label)
        )
        self.dataset_bytes = reg(Gauge("rdk_dataset_bytes", "Bytes of stored sample files", collect=self._bytes))
        self.model_active.set(0)
        self.model_scores: ModelScores | None = None  # set by the model manager
        self._model_gauges(reg)

    def _model_gauges(self, reg: Callable[[Gauge], Gauge]) -> None:
        """Golden-set scores and shadow counts of the champion and the challenger, read at scrape time."""
        golden = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("n", "frame count"))
        for key, words in golden:
            reg(
                Gauge(
                    f"rdk_model_golden_{key if key != 'n' else 'samples'}",
                    f"Golden-set {words} of each model as the board scores it",
                    ("model",),
                    collect=partial(self._per_model, partial(_golden_value, key), MODEL_ROLES),
                )
            )
        shadow = (
            ("frames", "Frames the challenger answered in shadow"),
            ("disagreements", "Shadow frames where challenger and champion disagreed"),
            ("dropped", "Shadow frames dropped because the challenger fell behind"),
            ("operator_labels", "Operator labels on frames with shadow predictions"),
        )
        for key, text in shadow:
            reg(
                Gauge(
                    f"rdk_model_shadow_{key}",
                    text,
                    ("model",),
                    collect=partial(self._per_model, partial(_shadow_value, key), ("challenger",)),
                )
            )
        reg(
            Gauge(
                "rdk_model_shadow_agreement",
                "Share of operator labels each model agreed with on shadow frames",
                ("model",),
                collect=self._agreement,
            )
        )

    def _per_model(self, pick: Callable[[dict], float | None], roles: tuple[str, ...]) -> dict[tuple[str, ...], float]:
        versions = self.model_scores() if self.model_scores is not None else {}
        values: dict[tuple[str, ...], float] = {}
        for role in roles:
            version = versions.get(role)
            value = pick(version) if version is not None else None
            if value is not None:
                values[(role,)] = float(value)
        return values

    def _agreement(self) -> dict[tuple[str, ...], float]:
        versions = self.model_scores() if self.model_scores is not None else {}
        challenger = versions.get("challenger")
        if challenger is None:
            return {}
        shadow = challenger["shadow"]
        pairs = (("champion", shadow["champion_agreement"]), ("challenger", shadow["challenger_agreement"]))
        return {(role,): float(v) for role, v in pairs if v is not None}

    def _samples_by_label(self) -> dict[tuple[str, ...], float]:
        if self._dataset_counts is None:
            return {}
        counts, _ = self._dataset_counts()
        return {(label if label is not None else "unlabelled",): float(n) for label, n in counts.items()}

    def _bytes(self) -> dict[tuple[str, ...], float]:
        if self._dataset_counts is None:
            return {}
        return {(): float(self._dataset_counts()[1])}

    def record_inspection(self, engine: str, label: str | None, reason: str | None, seconds: float) -> None:
        """Count one inspection result."""
        self.inspect_latency.observe(seconds, engine=engine)
        self.inspections.inc(engine=engine, label=label or "none")
        if reason:
            self.fallbacks.inc(reason=reason)

    def record_capture(self, label: str | None) -> None:
        """Count one stored capture (``None`` = unlabelled)."""
        self.captures.inc(label=label or "unlabelled")

    def model_counters(self) -> dict:
        """Inspections per engine, fallbacks per reason, model loads and refusals, frames queued for review."""
        engines: dict[str, int] = {"onnx": 0, "rules": 0}
        for (engine, _label), n in self.inspections.samples().items():
            engines[engine] = engines.get(engine, 0) + int(n)
        return {
            "engine": engines,
            "fallback_reason": {reason: int(n) for (reason,), n in sorted(self.fallbacks.samples().items())},
            "reloads": int(self.model_reloads.value()),
            "load_failures": {code: int(n) for (code,), n in sorted(self.model_failures.samples().items())},
            "review_queued": int(self.review_queued.value()),
        }

    def render(self) -> str:
        """Prometheus text of every metric."""
        return self.registry.render()
