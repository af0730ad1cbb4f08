"""InspectionSettings: the ``inspection`` section of the agent config, validated."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rdk_agent.inspection.onnx_model import DEFAULT_INTRA_OP_THREADS


@dataclass(frozen=True)
class InspectionSettings:
    """How the inspector decides, how models are watched, and the optional live loop."""

    confidence_threshold: float = 0.6  # below it the rules decide (reason low_confidence)
    review_threshold: float = 0.75  # model confidence below it sends the frame to the review queue
    timeout_ms: float = 1000.0  # inference deadline; slower runs are stopped (reason timeout)
    intra_op_threads: int = DEFAULT_INTRA_OP_THREADS
    max_consecutive_timeouts: int = 3  # then the model rests for unhealthy_cooldown_s
    unhealthy_cooldown_s: float = 30.0
    parallel_rules: bool = True  # run the rules alongside ONNX Runtime instead of after it
    model_filename: str = "model.onnx"
    poll_interval_s: float = 0.5  # models-dir watch period
    keep_models: int = 3  # good models kept for rollback
    loop: bool = False  # inspect the live camera continuously
    loop_interval_s: float = 1.0
    review_min_interval_s: float = 5.0  # the live loop queues at most one frame per interval

    def __post_init__(self) -> None:
        for name in ("confidence_threshold", "review_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"inspection.{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("timeout_ms", "poll_interval_s", "loop_interval_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"inspection.{name} must be positive, got {getattr(self, name)}")
        for name in ("intra_op_threads", "keep_models", "max_consecutive_timeouts"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"inspection.{name} must be at least 1, got {getattr(self, name)}")
        if "/" in self.model_filename or not self.model_filename.endswith(".onnx"):
            raise ValueError(f"inspection.model_filename must be a bare *.onnx name, got {self.model_filename!r}")

    @classmethod
    def from_dict(cls, data: dict | None) -> InspectionSettings:
        """Build from the config's ``inspection`` dict; unknown keys are an error naming the known ones."""
        data = dict(data or {})
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown inspection setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return cls(**data)
