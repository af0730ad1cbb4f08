"""shared_schema.split: the split as a pure function of the group key, the same on board and desktop."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_schema.split import SPLITS, split_of, unit_hash


def test_known_keys_keep_their_split():
    # Pinned: a change here would silently move every frozen test sample on every board.
    assert unit_hash("weld-1") == pytest.approx(0.20771177839725516)
    assert [split_of(k, 0.15, 0.15) for k in ("weld-1", "run07", "part A")] == ["val", "test", "train"]
    assert split_of("run07", 0.2, 0.1, seed="s") == "train"


@given(st.text(max_size=40), st.floats(0, 0.45), st.floats(0, 0.45))
def test_split_follows_the_unit_hash(key, val, test):
    u = unit_hash(key)
    assert 0 <= u < 1
    expected = "test" if u < test else "val" if u < test + val else "train"
    assert split_of(key, val, test) == expected


def test_fractions_are_respected_over_many_keys():
    counts = dict.fromkeys(SPLITS, 0)
    for i in range(20_000):
        counts[split_of(f"part-{i}", 0.2, 0.1)] += 1
    assert counts["test"] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert counts["val"] / 20_000 == pytest.approx(0.2, abs=0.01)


@pytest.mark.parametrize(("val", "test"), [(-0.1, 0.1), (0.1, 1.0), (0.5, 0.5)])
def test_bad_fractions_are_refused(val, test):
    with pytest.raises(ValueError, match="bad split fractions"):
        split_of("k", val, test)
