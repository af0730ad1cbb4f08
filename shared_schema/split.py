"""The train/val/test split of a sample as a pure function of its group key.

The board and the desktop compute the same answer: the trainer splits with it, and the agent can
tell which of its captures will be test data (a frozen evaluation set needs exactly this). A group
is the unit that must not straddle splits (the frames of one part, weld or production run); a
sample without a group is its own group. The answer depends on the key, the fractions and the
seed only, so adding samples never moves an existing one.

The agent marks a capture golden (the frozen evaluation set) when :func:`is_test_group` holds for its
group with the default fractions, so the golden set is the test side of the trainer's default split.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "val", "test")
DEFAULT_VAL_FRACTION = 0.15  # the trainer's data.val_fraction default
DEFAULT_TEST_FRACTION = 0.15  # the trainer's data.test_fraction default; also the agent's golden share


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """ValueError unless both fractions are in [0, 1) and leave room for training."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"bad split fractions val={val_fraction} test={test_fraction}: each in [0, 1), sum < 1")


def unit_hash(group_key: str, seed: str = "") -> float:
    """A stable number in [0, 1) for a group key: the first 8 bytes of sha256(seed + key)."""
    digest = hashlib.sha256(f"{seed}{group_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(group_key: str, val_fraction: float, test_fraction: float, seed: str = "") -> str:
    """``"test"`` when the key's unit hash is below ``test_fraction``, ``"val"`` below the sum, else ``"train"``."""
    check_fractions(val_fraction, test_fraction)
    u = unit_hash(group_key, seed)
    if u < test_fraction:
        return "test"
    return "val" if u < test_fraction + val_fraction else "train"


def is_test_group(group_key: str, test_fraction: float = DEFAULT_TEST_FRACTION, seed: str = "") -> bool:
    """True when :func:`split_of` puts ``group_key`` in test (whatever the val fraction)."""
    check_fractions(0.0, test_fraction)
    return unit_hash(group_key, seed) < test_fraction
