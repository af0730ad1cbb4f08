"""The promotion policy: what happens to a challenger, given its scores, the champion's and the settings.

:func:`decide` is a pure function of the two versions and the station's settings. Its answer is
``promoted``, ``refused`` or ``waiting`` (a verdict, shown with both models' golden-set accuracy and
macro-F1 side by side), or ``pending`` while the challenger is still being scored or runs in shadow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rdk_agent.inspection.settings import InspectionSettings

EPSILON = 1e-9  # macro-F1 values are rounded to 6 places; compare with a little room


@dataclass(frozen=True)
class Decision:
    """``decision`` is promoted, refused, waiting or pending; ``reason`` says why in a sentence."""

    decision: str
    reason: str

    def verdict(self, champion: dict | None, challenger: dict) -> dict:
        """The verdict object a version carries once decided."""
        return {
            "decision": self.decision,
            "reason": self.reason,
            "champion": _scores(champion),
            "challenger": _scores(challenger),
            "at": time.time(),
        }


def _scores(version: dict | None) -> dict | None:
    if version is None:
        return None
    golden = version.get("golden") or {}
    return {
        "sha256": version["sha256"],
        "accuracy": golden.get("accuracy"),
        "macro_f1": golden.get("macro_f1"),
        "n": golden.get("n"),
    }


def _f1(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def decide(settings: InspectionSettings, champion: dict | None, challenger: dict) -> Decision:
    """The policy of the module docstring: refuse a challenger worse on the golden set, promote one better by
    the margin after its shadow frames (auto), else leave it waiting for the operator."""
    if settings.promotion == "immediate":
        return Decision("promoted", "promotion is immediate: every model that passes the card checks serves")
    golden = challenger.get("golden")
    if golden is None:
        return Decision("pending", "scoring on the golden set")
    if champion is None:
        if golden["n"] == 0:
            return Decision("promoted", "first model on this board; the golden set is empty, so it cannot judge")
        return Decision(
            "promoted",
            f"first model on this board: golden accuracy {golden['accuracy']:.4f}, macro-F1 "
            f"{golden['macro_f1']:.4f} on {golden['n']} frames",
        )
    reference = champion.get("golden")
    if reference is None or reference.get("signature") != golden.get("signature"):
        return Decision("pending", "scoring the champion on the same golden set")
    new, old = golden["macro_f1"], reference["macro_f1"]
    judged = golden["n"] > 0 and new is not None and old is not None
    if judged and new < old - EPSILON:
        return Decision("refused", f"worse on the golden set: macro-F1 {_f1(new)} against the champion's {_f1(old)}")
    if settings.promotion == "manual":
        return Decision("waiting", f"promotion is manual: macro-F1 {_f1(new)} against the champion's {_f1(old)}")
    if judged and new < old + settings.promotion_margin - EPSILON:
        return Decision(
            "waiting",
            f"not better by the margin: macro-F1 {_f1(new)} against the champion's {_f1(old)} + "
            f"{settings.promotion_margin:g}; the operator decides",
        )
    return _after_shadow(settings, challenger, judged)


def _after_shadow(settings: InspectionSettings, challenger: dict, judged: bool) -> Decision:
    shadow = challenger["shadow"]
    if shadow["frames"] < settings.shadow_frames:
        return Decision("pending", f"in shadow: {shadow['frames']}/{settings.shadow_frames} frames")
    mine, theirs = shadow.get("challenger_agreement"), shadow.get("champion_agreement")
    if mine is not None and theirs is not None and mine < theirs - EPSILON:
        return Decision(
            "waiting",
            f"worse agreement with operator labels in shadow: {mine:.3f} against the champion's {theirs:.3f} "
            f"on {shadow['operator_labels']} labels; the operator decides",
        )
    basis = "better on the golden set by the margin" if judged else "the golden set is empty, so it cannot judge"
    if settings.shadow_frames == 0:
        return Decision("promoted", f"{basis}; no shadow run (shadow_frames 0)")
    labels = shadow.get("operator_labels") or 0
    agreement = f", operator-label agreement {mine:.3f} vs {theirs:.3f}" if labels and mine is not None else ""
    return Decision("promoted", f"{basis}; {shadow['frames']} shadow frames{agreement}")
