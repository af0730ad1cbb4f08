"""OnnxAnomalyModel: a checked ONNX Runtime session for a ``task: anomaly`` card (score, pass/fail, map, peak).

Same preprocessing as the classifier (``shared_schema.preprocess``); the graph gives a raw image
score and a raw map at the input's resolution, normalised with the card's ``anomaly`` settings so
that the threshold is 0.5 (``shared_schema.anomaly``). The peak is the map's maximum, mapped back to
frame coordinates through the contract's orientation and letterbox.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from rdk_agent.inspection.onnx_model import (
    DEFAULT_INTRA_OP_THREADS,
    InferenceError,
    ModelLoadError,
    open_session,
    read_card,
    read_model_file,
)
from shared_schema import LabelSchema
from shared_schema.anomaly import MAP_ROLE, NORMALISED_THRESHOLD, AnomalySettings, input_to_frame
from shared_schema.preprocess import preprocess


@dataclass(frozen=True)
class AnomalyPrediction:
    """One frame's anomaly score (normalised, threshold 0.5), verdict, map and its peak in frame coordinates."""

    score: float
    raw_score: float
    anomalous: bool
    anomaly_map: np.ndarray  # H x W over the model input, normalised to [0, 1]
    peak: tuple[int, int]  # (x, y) in the frame
    preprocess_ms: float
    inference_ms: float

    def to_dict(self) -> dict:
        """The JSON part of an inspection result (the map stays out: it is large)."""
        return {
            "score": round(self.score, 6),
            "raw_score": round(self.raw_score, 6),
            "threshold": NORMALISED_THRESHOLD,
            "anomalous": self.anomalous,
            "peak": {"x": self.peak[0], "y": self.peak[1]},
        }


class OnnxAnomalyModel:
    """A loaded, verified anomaly model. ``predict`` is thread-safe (ORT sessions are)."""

    def __init__(
        self, data: bytes, schema: LabelSchema, intra_op_threads: int = DEFAULT_INTRA_OP_THREADS, source: str = ""
    ) -> None:
        """Load the model ``data`` and check card, schema and graph; ModelLoadError says why not."""
        started = time.perf_counter()
        self.source = source
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.size_bytes = len(data)
        self.intra_op_threads = max(1, int(intra_op_threads))
        self.session = open_session(data, self.intra_op_threads)
        self.card = read_card(self.session)
        if self.card.task != "anomaly":
            raise ModelLoadError("load_failed", "not_anomaly", f"the card's task is {self.card.task!r}, not 'anomaly'")
        if self.card.label_schema_hash != schema.hash:
            raise ModelLoadError(
                "schema_mismatch",
                "schema_mismatch",
                f"model is bound to label schema {self.card.label_schema_hash[:12]}..., the agent runs "
                f"'{schema.name}' {schema.hash[:12]}...",
            )
        self.settings = AnomalySettings.from_dict(self.card.anomaly or {})
        self.map_name = self.card.extra_outputs.get(MAP_ROLE, "")
        self._check_io()
        self.warmup_ms = self._smoke_test()
        self.load_ms = (time.perf_counter() - started) * 1000.0
        self.loaded_at = time.time()

    @classmethod
    def from_file(
        cls, path: str | Path, schema: LabelSchema, intra_op_threads: int = DEFAULT_INTRA_OP_THREADS
    ) -> OnnxAnomalyModel:
        """Read ``path`` once and load it."""
        return cls(read_model_file(path), schema, intra_op_threads, source=str(path))

    def _check_io(self) -> None:
        contract = self.card.input
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        shape = inputs.get(contract.tensor_name)
        expected = [contract.num_channels, contract.height, contract.width]
        if (
            shape is None
            or len(shape) != 4
            or any(isinstance(d, int) and d != e for d, e in zip(shape[1:], expected, strict=True))
        ):
            raise ModelLoadError(
                "load_failed", "input_mismatch", f"graph inputs {inputs} do not match the card's {contract.tensor_name}"
            )
        outputs = {o.name for o in self.session.get_outputs()}
        missing = [n for n in (self.card.output_name, self.map_name) if n not in outputs]
        if missing:
            raise ModelLoadError(
                "load_failed", "output_mismatch", f"card names outputs {missing} but the graph has {sorted(outputs)}"
            )

    def _smoke_test(self) -> float:
        """Warm-up run on a mid-grey frame that must give a finite score and map."""
        contract = self.card.input
        grey = np.full((contract.height, contract.width, 3), 128, dtype=np.uint8)
        depth = np.full(grey.shape[:2], 500, dtype=np.uint16) if contract.channels == "rgbd" else None
        started = time.perf_counter()
        try:
            self.predict(grey, depth)
        except InferenceError as exc:
            raise ModelLoadError("load_failed", "smoke_failed", f"smoke inference failed: {exc}") from None
        return (time.perf_counter() - started) * 1000.0

    def run_raw(self, x: np.ndarray, run_options: ort.RunOptions | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Raw scores (N) and maps (N x H x W) of a preprocessed N x C x H x W batch."""
        try:
            score, amap = self.session.run(
                [self.card.output_name, self.map_name], {self.card.input.tensor_name: x}, run_options
            )
        except Exception as exc:
            timed_out = run_options is not None and run_options.terminate
            lines = str(exc).strip().splitlines()
            raise InferenceError(f"session.run failed: {lines[0][:300] if lines else exc}", timed_out) from None
        score, amap = np.asarray(score).reshape(len(x)), np.asarray(amap).reshape(len(x), *x.shape[-2:])
        if not (np.all(np.isfinite(score)) and np.all(np.isfinite(amap))):
            raise InferenceError("model output is not finite (NaN or inf)")
        return score, amap

    def predict(
        self, rgb: np.ndarray, depth: np.ndarray | None = None, run_options: ort.RunOptions | None = None
    ) -> AnomalyPrediction:
        """Preprocess with the shared contract, run, normalise, and locate the peak; InferenceError on failure."""
        t0 = time.perf_counter()
        contract = self.card.input
        try:
            x = preprocess(rgb, contract, depth if contract.channels == "rgbd" else None)
        except ValueError as exc:
            raise InferenceError(f"preprocessing failed: {exc}") from None
        t1 = time.perf_counter()
        score, amap = self.run_raw(x[None], run_options)
        t2 = time.perf_counter()
        raw = float(score[0])
        normalised = float(self.settings.image.normalise(raw))
        py, px = np.unravel_index(int(np.argmax(amap[0])), amap[0].shape)
        peak = input_to_frame(float(px), float(py), contract, rgb.shape[:2])
        return AnomalyPrediction(
            score=normalised,
            raw_score=raw,
            anomalous=raw >= self.settings.image.threshold,
            anomaly_map=self.settings.pixel.normalise(amap[0]).astype(np.float32),
            peak=peak,
            preprocess_ms=(t1 - t0) * 1000.0,
            inference_ms=(t2 - t1) * 1000.0,
        )

    def describe(self) -> dict:
        """JSON summary for the status API."""
        return {
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "card": self.card.to_dict(),
            "loaded_at": self.loaded_at,
            "load_ms": round(self.load_ms, 2),
            "warmup_ms": round(self.warmup_ms, 2),
        }
