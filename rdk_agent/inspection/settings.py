"""InspectionSettings: the ``inspection`` section of the agent config, validated.

``rules`` chooses when the rule-based evaluator runs:

* ``"always"`` (the default): on every frame, alongside the model when ``parallel_rules`` is on.
  The operator page then always shows the rule measures (width, height, pores, spatter) next to
  the model's probabilities, and a fallback costs no extra latency because the rules are already
  done. The price is CPU: the rules take tens of milliseconds per 640x480 frame, often more than
  the model itself, and on the board they compete with inference, capture and the preview stream.
* ``"on_fallback"``: only when the model cannot decide (no model, refused model, inference error,
  timeout, low confidence). A frame the model decides costs the model alone, and its result has
  ``rules: null``. A frame that falls back pays model and rules one after the other.
  ``parallel_rules`` has no effect in this mode. Use it for throughput (live loop, many stations
  per board, batch inspection), and when rule measures are not needed for confident frames.

``confidence_threshold`` and ``review_threshold`` are station overrides: left unset (``None``),
the serving model card's recommended values apply, and the defaults 0.6 / 0.75 when the card has
none (see ``rdk_agent.inspection.thresholds``).

A model that arrives in the models dir becomes the challenger (see ``rdk_agent.inspection.cycle``).
``promotion`` says who promotes it: ``"auto"`` promotes it when its golden-set macro-F1 is at least
the champion's plus ``promotion_margin`` and it has run ``shadow_frames`` frames in shadow without a
worse agreement with operator labels than the champion's; ``"manual"`` leaves every promotion to
the operator. A challenger worse on the golden set is refused in both modes. ``"immediate"`` is the
behaviour before the registry, for rigs that test the hot swap itself: every model that passes the
card checks serves at once (it is still kept, scored and shown, but the golden set is no gate).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rdk_agent.inspection.onnx_model import DEFAULT_INTRA_OP_THREADS

RULES_MODES = ("always", "on_fallback")
PROMOTION_MODES = ("auto", "manual", "immediate")


@dataclass(frozen=True)
class InspectionSettings:
    """How the inspector decides, how models are watched, and the optional live loop."""

    confidence_threshold: float | None = None  # below it the rules decide (low_confidence); None: card, else 0.6
    review_threshold: float | None = None  # below it the frame goes to the review queue; None: card, else 0.75
    timeout_ms: float = 1000.0  # inference deadline; slower runs are stopped (reason timeout)
    intra_op_threads: int = DEFAULT_INTRA_OP_THREADS
    max_consecutive_timeouts: int = 3  # then the model rests for unhealthy_cooldown_s
    unhealthy_cooldown_s: float = 30.0
    rules: str = "always"  # when the rules run: always | on_fallback (see the module docstring)
    parallel_rules: bool = True  # with rules="always": run them alongside ONNX Runtime instead of after it
    model_filename: str = "model.onnx"
    poll_interval_s: float = 0.5  # models-dir watch period
    keep_models: int = 5  # model versions kept on the board (never the champion or the previous champion)
    promotion: str = "auto"  # auto | manual | immediate: who promotes a challenger (see the module docstring)
    promotion_margin: float = 0.01  # golden-set macro-F1 a challenger must gain over the champion
    shadow_frames: int = 50  # frames a challenger runs in shadow before auto promotion; 0 = no shadow
    shadow_queue: int = 8  # frames waiting for the challenger; more are dropped (and counted)
    shadow_review_max: int = 100  # disagreements a challenger sends to the review queue at most
    golden_check_s: float = 2.0  # how often the golden set is checked for changes
    loop: bool = False  # inspect the live camera continuously
    loop_interval_s: float = 1.0
    review_min_interval_s: float = 5.0  # the live loop queues at most one frame per interval

    def __post_init__(self) -> None:
        for name in ("confidence_threshold", "review_threshold"):
            if getattr(self, name) is not None and not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"inspection.{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("timeout_ms", "poll_interval_s", "loop_interval_s", "golden_check_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"inspection.{name} must be positive, got {getattr(self, name)}")
        for name in ("intra_op_threads", "keep_models", "max_consecutive_timeouts", "shadow_queue"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"inspection.{name} must be at least 1, got {getattr(self, name)}")
        for name, allowed in (("rules", RULES_MODES), ("promotion", PROMOTION_MODES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"inspection.{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if "/" in self.model_filename or not self.model_filename.endswith(".onnx"):
            raise ValueError(f"inspection.model_filename must be a bare *.onnx name, got {self.model_filename!r}")
        self._check_promotion()

    def _check_promotion(self) -> None:
        for name in ("shadow_frames", "shadow_review_max"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"inspection.{name} must be at least 0, got {getattr(self, name)}")
        if not 0.0 <= self.promotion_margin <= 1.0:
            raise ValueError(f"inspection.promotion_margin must be in [0, 1], got {self.promotion_margin}")

    @classmethod
    def from_dict(cls, data: dict | None) -> InspectionSettings:
        """Build from the config's ``inspection`` dict; unknown keys are an error naming the known ones."""
        data = dict(data or {})
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown inspection setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return cls(**data)
