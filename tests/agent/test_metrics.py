"""GET /metrics: Prometheus text format 0.0.4, checked by the strict parser below, and the telemetry registry.

prometheus_client is not a dependency, so ``parse`` here is a strict reader of the format: it
raises ValueError naming the line for bad metric or label names, bad escapes, unparsable values,
samples before their TYPE, a family split in two, duplicate series, and histograms whose buckets
are not cumulative or lack +Inf, _sum or _count.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

import pytest

from rdk_agent.telemetry import Counter, Gauge, Histogram, Registry, Telemetry
from tests.agent_app import AgentApp
from tests.helpers import onnx_models as om

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", "")}


@dataclass
class Family:
    name: str
    type: str = "untyped"
    help: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


def _value(text: str, lineno: int) -> float:
    if text in ("NaN", "+Inf", "-Inf", "Inf"):
        return {"NaN": math.nan, "+Inf": math.inf, "Inf": math.inf, "-Inf": -math.inf}[text]
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"line {lineno}: value {text!r} is not a float") from None


def _labels(text: str, lineno: int) -> dict[str, str]:
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = LABEL_RE.match(text, pos)
        if not match:
            raise ValueError(f"line {lineno}: bad label syntax at {text[pos:]!r}")
        if match.group(1) in labels:
            raise ValueError(f"line {lineno}: label {match.group(1)} repeated")
        labels[match.group(1)] = match.group(2).replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        pos = match.end()
        if pos < len(text):
            if text[pos] != ",":
                raise ValueError(f"line {lineno}: expected ',' between labels")
            pos += 1
    return labels


def _family_of(sample: str, families: dict[str, Family]) -> Family | None:
    for fam in families.values():
        for suffix in SUFFIXES.get(fam.type, ("",)):
            if sample == fam.name + suffix:
                return fam
    return None


def parse(text: str) -> dict[str, Family]:
    """Parse and validate; returns the metric families by name."""
    if not text.endswith("\n"):
        raise ValueError("exposition must end with a newline")
    reader = _Reader()
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            reader.comment(line, lineno)
        elif line:
            reader.sample(line, lineno)
    for fam in reader.families.values():
        if fam.type == "histogram":
            _check_histogram(fam)
    return reader.families


@dataclass
class _Reader:
    """One parse's state: the families so far, the one whose block is open, the closed ones, the series seen."""

    families: dict[str, Family] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    current: Family | None = None
    seen: set[tuple[str, tuple]] = field(default_factory=set)

    def comment(self, line: str, lineno: int) -> None:
        """A HELP or TYPE line opens (or continues) its family's block; other comments are skipped."""
        parts = line.split(" ", 3)
        if len(parts) < 3 or parts[1] not in ("HELP", "TYPE"):
            return
        name = parts[2]
        if not NAME_RE.fullmatch(name):
            raise ValueError(f"line {lineno}: bad metric name {name!r}")
        if name in self.closed:
            raise ValueError(f"line {lineno}: family {name} appears twice")
        if self.current is not None and self.current.name != name:
            self.closed.add(self.current.name)
        fam = self.families.setdefault(name, Family(name))
        if parts[1] == "TYPE":
            if len(parts) != 4 or parts[3] not in TYPES:
                raise ValueError(f"line {lineno}: bad TYPE line")
            if fam.samples:
                raise ValueError(f"line {lineno}: TYPE after samples of {name}")
            fam.type = parts[3]
        else:
            fam.help = parts[3] if len(parts) == 4 else ""
        self.current = fam

    def sample(self, line: str, lineno: int) -> None:
        """A sample line, in the block of its family, of a series not seen before."""
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?", line)
        if not match:
            raise ValueError(f"line {lineno}: not a sample line: {line!r}")
        name, raw_labels, raw_value = match.group(1), match.group(2) or "", match.group(3)
        fam = _family_of(name, self.families)
        if fam is None or fam is not self.current:
            raise ValueError(f"line {lineno}: sample {name} outside its family's block (missing TYPE?)")
        labels = _labels(raw_labels, lineno)
        key = (name, tuple(sorted(labels.items())))
        if key in self.seen:
            raise ValueError(f"line {lineno}: duplicate series {name}{labels}")
        self.seen.add(key)
        value = _value(raw_value, lineno)
        if fam.type == "counter" and not value >= 0:
            raise ValueError(f"line {lineno}: counter {name} has value {value}")
        fam.samples.append((name, labels, value))


def _check_histogram(fam: Family) -> None:
    series: dict[tuple, dict] = {}
    for name, labels, value in fam.samples:
        base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        entry = series.setdefault(base, {"buckets": [], "sum": None, "count": None})
        if name.endswith("_bucket"):
            if "le" not in labels:
                raise ValueError(f"{fam.name}: bucket without le")
            entry["buckets"].append((_value(labels["le"], 0), value))
        elif name.endswith("_sum"):
            entry["sum"] = value
        else:
            entry["count"] = value
    for base, entry in series.items():
        bounds = [b for b, _ in entry["buckets"]]
        counts = [c for _, c in entry["buckets"]]
        if not bounds or bounds[-1] != math.inf:
            raise ValueError(f"{fam.name}{base}: no +Inf bucket")
        if bounds != sorted(bounds) or counts != sorted(counts):
            raise ValueError(f"{fam.name}{base}: buckets are not cumulative")
        if entry["sum"] is None or entry["count"] is None or entry["count"] != counts[-1]:
            raise ValueError(f"{fam.name}{base}: _sum/_count missing or _count != +Inf bucket")


def value(families: dict[str, Family], sample: str, **labels: str) -> float | None:
    """The value of one series, or None."""
    for fam in families.values():
        for name, got, v in fam.samples:
            if name == sample and got == labels:
                return v
    return None


# -- the parser itself must reject what the format forbids -----------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "x 1",  # no trailing newline
        "x 1\n",  # sample without TYPE
        '# TYPE x counter\nx{a="1"} one\n',  # bad value
        "# TYPE x counter\nx{a=1} 1\n",  # unquoted label
        "# TYPE x counter\nx -1\n",  # negative counter
        "# TYPE x counter\nx 1\nx 2\n",  # duplicate series
        '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
        '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',  # no +Inf
    ],
)
def test_parser_rejects_invalid_text(text):
    with pytest.raises(ValueError):
        parse(text)


def test_registry_renders_valid_text_with_escapes():
    reg = Registry()
    c = reg.register(Counter("t_total", "a counter\nwith newline", ("path",)))
    g = reg.register(Gauge("t_gauge", "a gauge", collect=lambda: {(): 2.5}))
    h = reg.register(Histogram("t_seconds", "a histogram", ("engine",), buckets=(0.1, 1.0)))
    c.inc(path='a "quoted" \\ path\n')
    c.inc(2, path="b")
    h.observe(0.05, engine="onnx")
    h.observe(0.5, engine="onnx")
    h.observe(7.0, engine="onnx")
    families = parse(reg.render())
    assert value(families, "t_total", path='a "quoted" \\ path\n') == 1
    assert value(families, "t_total", path="b") == 2
    assert value(families, "t_gauge") == 2.5 and g.collect is not None
    assert value(families, "t_seconds_bucket", engine="onnx", le="0.1") == 1
    assert value(families, "t_seconds_bucket", engine="onnx", le="1") == 2
    assert value(families, "t_seconds_bucket", engine="onnx", le="+Inf") == 3
    assert value(families, "t_seconds_count", engine="onnx") == 3
    assert value(families, "t_seconds_sum", engine="onnx") == pytest.approx(7.55)
    with pytest.raises(ValueError):
        c.inc(-1, path="b")
    with pytest.raises(ValueError):
        c.inc(other="x")
    with pytest.raises(ValueError):
        reg.register(Counter("t_total", "again"))


def test_fresh_telemetry_is_valid():
    families = parse(Telemetry().render())
    assert families["rdk_inspection_latency_seconds"].type == "histogram"
    assert value(families, "rdk_model_active") == 0


# -- the live endpoint --------------------------------------------------------------------------


def test_metrics_endpoint_counts_inspections_fallbacks_models_and_captures(agent_app):
    agent = agent_app(inspection={"poll_interval_s": 0.1, "intra_op_threads": 1})
    client = agent.client
    first = parse(client.get("/metrics").text)
    assert value(first, "rdk_model_active") == 0

    for _ in range(2):
        r = client.post(agent.api("inspect"), json={}, headers=agent.auth)
        assert r.status_code == 200 and r.json["fallback_reason"] == "no_model"
    om.write_truncated(agent.models_dir / "model.onnx")
    _wait_model(agent, lambda s: s["last_error"] is not None)
    om.write_valid(agent.models_dir / "model.onnx", margin=9.0)
    _wait_model(agent, lambda s: s["state"] == "active")
    r = client.post(agent.api("inspect"), json={}, headers=agent.auth)
    assert r.json["engine"] == "onnx"
    r = client.post(agent.api("captures"), json={"label": "good"}, headers=agent.auth)
    assert r.status_code == 201

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = parse(response.text)
    assert value(families, "rdk_inspection_fallbacks_total", reason="no_model") == 2
    assert value(families, "rdk_inspections_total", engine="onnx", label="good") == 1
    assert value(families, "rdk_inspection_latency_seconds_count", engine="rules") == 2
    assert value(families, "rdk_inspection_latency_seconds_count", engine="onnx") == 1
    assert value(families, "rdk_model_reloads_total") == 1
    assert value(families, "rdk_model_load_failures_total", code="not_onnx") == 1
    assert value(families, "rdk_model_active") == 1
    assert value(families, "rdk_captures_total", label="good") == 1
    assert value(families, "rdk_dataset_samples", label="good") == 1
    assert value(families, "rdk_dataset_bytes") > 0


def _wait_model(agent: AgentApp, predicate, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = agent.client.get(agent.api("model"), headers=agent.auth).json
        if predicate(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"model state not reached: {status}")
