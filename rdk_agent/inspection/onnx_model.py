"""OnnxClassifier: one checked ONNX Runtime session plus the model card embedded in the file."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from shared_schema import LabelSchema, ModelCard, ModelCardError, card_from_metadata
from shared_schema.postprocess import model_probabilities
from shared_schema.preprocess import preprocess

# The RDK X5 has 8 Cortex-A55 cores. Four intra-op threads give most of the speed-up a small CNN
# gets on that CPU while leaving four cores for the camera, JPEG encoding of the preview stream
# and waitress's HTTP threads, so that inference never starves capture.
DEFAULT_INTRA_OP_THREADS = 4
PROBABILITY_SUM_TOLERANCE = 1e-3


class ModelLoadError(Exception):
    """A model file was refused. ``reason`` is the fallback reason (``load_failed`` or
    ``schema_mismatch``), ``code`` the precise cause, ``message`` the explanation."""

    def __init__(self, reason: str, code: str, message: str) -> None:
        self.reason = reason
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class InferenceError(Exception):
    """A run failed or gave unusable output; ``timed_out`` when the deadline stopped it."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        self.timed_out = timed_out
        super().__init__(message)


@dataclass(frozen=True)
class Prediction:
    """Class probabilities of one frame, in the card's label order; ``cam`` the class maps (K x h x w)
    when the model has a ``cam`` output, ``cam_fine`` the finer ones when it also has ``cam_fine``."""

    labels: tuple[str, ...]
    probabilities: np.ndarray
    preprocess_ms: float
    inference_ms: float
    cam: np.ndarray | None = None
    cam_fine: np.ndarray | None = None

    @property
    def index(self) -> int:
        """Position of the winning class."""
        return int(np.argmax(self.probabilities))

    @property
    def label(self) -> str:
        """Winning class."""
        return self.labels[self.index]

    @property
    def confidence(self) -> float:
        """Probability of the winning class."""
        return float(self.probabilities[self.index])

    def by_name(self) -> dict[str, float]:
        """Probabilities keyed by label name."""
        return {name: round(float(p), 6) for name, p in zip(self.labels, self.probabilities, strict=True)}


def session_options(intra_op_threads: int = DEFAULT_INTRA_OP_THREADS) -> ort.SessionOptions:
    """ORT options for the board: bounded intra-op threads, sequential graph, full optimisation."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(intra_op_threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only; a refused model is reported through ModelLoadError
    return opts


def read_card(session: ort.InferenceSession) -> ModelCard:
    """The model card stored in the session's metadata; ModelLoadError (no_card, invalid_card) otherwise."""
    try:
        return card_from_metadata(session.get_modelmeta().custom_metadata_map, "the model")
    except ModelCardError as exc:
        raise ModelLoadError("load_failed", "no_card" if exc.missing else "invalid_card", str(exc)) from None


def open_session(data: bytes, intra_op_threads: int) -> ort.InferenceSession:
    """An ORT CPU session on the model ``data``; ModelLoadError ``not_onnx`` when ORT cannot load it."""
    try:
        options = session_options(intra_op_threads)
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for every kind of bad file
        message = f"ONNX Runtime cannot load the file: {_first_line(exc)}"
        raise ModelLoadError("load_failed", "not_onnx", message) from None


def read_model_file(path: str | Path) -> bytes:
    """The bytes of the model file ``path``; ModelLoadError ``unreadable`` when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ModelLoadError("load_failed", "unreadable", f"cannot read {path}: {exc.strerror}") from None


class OnnxClassifier:
    """A loaded, verified classifier. ``predict`` is thread-safe (ORT sessions are)."""

    def __init__(
        self, data: bytes, schema: LabelSchema, intra_op_threads: int = DEFAULT_INTRA_OP_THREADS, source: str = ""
    ) -> None:
        """Load the model ``data`` (file bytes) and check it against ``schema``; ModelLoadError says why not."""
        started = time.perf_counter()
        self.source = source
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.size_bytes = len(data)
        self.intra_op_threads = max(1, int(intra_op_threads))
        self.session = open_session(data, self.intra_op_threads)
        self.card = read_card(self.session)
        if self.card.task != "classify":
            message = f"the card's task is {self.card.task!r}: copy it to the models dir as anomaly.onnx"
            raise ModelLoadError("load_failed", "not_classifier", message)
        _check_schema(self.card, schema)
        self.cam_output: str | None = self.card.extra_outputs.get("cam")
        self.fine_output: str | None = self.card.extra_outputs.get("cam_fine") if self.cam_output else None
        self._check_io()
        self.warmup_ms = self._smoke_test()
        self.load_ms = (time.perf_counter() - started) * 1000.0
        self.loaded_at = time.time()

    @classmethod
    def from_file(
        cls, path: str | Path, schema: LabelSchema, intra_op_threads: int = DEFAULT_INTRA_OP_THREADS
    ) -> OnnxClassifier:
        """Read ``path`` once and load it."""
        return cls(read_model_file(path), schema, intra_op_threads, source=str(path))

    @property
    def labels(self) -> tuple[str, ...]:
        """Output labels in order."""
        return self.card.labels

    def _check_io(self) -> None:
        contract = self.card.input
        inputs = {i.name: i for i in self.session.get_inputs()}
        if contract.tensor_name not in inputs:
            raise ModelLoadError(
                "load_failed",
                "input_mismatch",
                f"card names input '{contract.tensor_name}' but the graph has {sorted(inputs)}",
            )
        shape = inputs[contract.tensor_name].shape
        expected = [contract.num_channels, contract.height, contract.width]
        if len(shape) != 4 or any(isinstance(d, int) and d != e for d, e in zip(shape[1:], expected, strict=True)):
            raise ModelLoadError(
                "load_failed",
                "input_mismatch",
                f"graph input shape {shape} does not match the card's N x {' x '.join(map(str, expected))}",
            )
        outputs = {o.name: o for o in self.session.get_outputs()}
        if self.card.output_name not in outputs:
            raise ModelLoadError(
                "load_failed",
                "output_mismatch",
                f"card names output '{self.card.output_name}' but the graph has {sorted(outputs)}",
            )
        out_shape = outputs[self.card.output_name].shape
        if len(out_shape) != 2 or (isinstance(out_shape[1], int) and out_shape[1] != len(self.labels)):
            raise ModelLoadError(
                "load_failed",
                "output_mismatch",
                f"graph output shape {out_shape} does not match N x {len(self.labels)} labels",
            )
        for name in (self.cam_output, self.fine_output):
            if name is None:
                continue
            cam_shape = outputs[name].shape if name in outputs else None
            if (
                cam_shape is None
                or len(cam_shape) != 4
                or (isinstance(cam_shape[1], int) and cam_shape[1] != len(self.labels))
            ):
                raise ModelLoadError(
                    "load_failed",
                    "output_mismatch",
                    f"card names class-map output '{name}' of N x {len(self.labels)} x h x w, but the graph "
                    f"has {name!r}: {cam_shape}",
                )

    def _smoke_test(self) -> float:
        """Warm-up run on a mid-grey frame that must give finite probabilities summing to 1."""
        contract = self.card.input
        grey = np.full((contract.height, contract.width, 3), 128, dtype=np.uint8)
        depth = np.full(grey.shape[:2], 500, dtype=np.uint16) if contract.channels == "rgbd" else None
        started = time.perf_counter()
        try:
            self.predict(grey, depth)
        except InferenceError as exc:
            raise ModelLoadError("load_failed", "smoke_failed", f"smoke inference failed: {exc}") from None
        return (time.perf_counter() - started) * 1000.0

    def predict(self, rgb: np.ndarray, depth: np.ndarray | None = None, run_options: ort.RunOptions | None = None):
        """Preprocess with the shared contract, run, and return a Prediction; InferenceError on failure."""
        t0 = time.perf_counter()
        try:
            x = preprocess(rgb, self.card.input, depth if self.card.input.channels == "rgbd" else None)
        except ValueError as exc:
            raise InferenceError(f"preprocessing failed: {exc}") from None
        t1 = time.perf_counter()
        names = [n for n in (self.card.output_name, self.cam_output, self.fine_output) if n is not None]
        try:
            out, *extra = self.session.run(names, {self.card.input.tensor_name: x[None]}, run_options)
        except Exception as exc:
            timed_out = run_options is not None and run_options.terminate
            raise InferenceError(f"session.run failed: {_first_line(exc)}", timed_out=timed_out) from None
        t2 = time.perf_counter()
        cam, fine = (extra[0][0] if extra else None), (extra[1][0] if len(extra) > 1 else None)
        return Prediction(self.labels, self._probabilities(out), (t1 - t0) * 1000.0, (t2 - t1) * 1000.0, cam, fine)

    def _probabilities(self, out: np.ndarray) -> np.ndarray:
        row = np.asarray(out, dtype=np.float64).reshape(-1)
        if row.shape[0] != len(self.labels):
            raise InferenceError(f"model gave {row.shape[0]} outputs for {len(self.labels)} labels")
        if not np.all(np.isfinite(row)):
            raise InferenceError("model output is not finite (NaN or inf)")
        probs = model_probabilities(row, self.card)
        if not (np.all(probs >= -1e-6) and abs(float(probs.sum()) - 1.0) <= PROBABILITY_SUM_TOLERANCE):
            raise InferenceError(f"probabilities do not sum to 1 (sum {float(probs.sum()):.4f})")
        return probs

    def describe(self) -> dict:
        """JSON summary for the status API."""
        return {
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "card": self.card.to_dict(),
            "loaded_at": self.loaded_at,
            "load_ms": round(self.load_ms, 2),
            "warmup_ms": round(self.warmup_ms, 2),
            "intra_op_threads": self.intra_op_threads,
        }


def _check_schema(card: ModelCard, schema: LabelSchema) -> None:
    if card.label_schema_hash != schema.hash:
        raise ModelLoadError(
            "schema_mismatch",
            "schema_mismatch",
            f"model is bound to label schema {card.label_schema_hash[:12]}..., the agent runs "
            f"'{schema.name}' {schema.hash[:12]}... ({', '.join(schema.names)})",
        )
    if list(card.labels) != schema.names:
        raise ModelLoadError(
            "schema_mismatch",
            "labels_mismatch",
            f"card labels {list(card.labels)} differ from the schema's {schema.names} despite the same hash",
        )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
