"""The series seen by end rules at a process end leaves out the teardown."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from heaplint.engine.series import Bucket
from heaplint.rules.trend import before_teardown, envelope_rising

S = 1_000_000_000


def series(levels: list[int]) -> list[Bucket]:
    return [Bucket(i * S, v, v, v) for i, v in enumerate(levels)]


def test_final_drop_is_cut():
    leak = series(list(range(100, 200)) + [5])
    assert not envelope_rising(leak, 8)
    kept = before_teardown(leak)
    assert [b.last for b in kept] == list(range(100, 200))
    assert envelope_rising(kept, 8)


def test_long_decline_is_kept():
    # a hump: rises for 60 %, falls for 40 %; the fall is behaviour, not teardown
    hump = series(list(range(60)) + list(range(60, 20, -1)))
    assert before_teardown(hump) == hump


def test_series_without_a_drop_is_unchanged():
    flat = series([7] * 30)
    assert before_teardown(flat) == flat
    assert before_teardown([]) == [] and before_teardown(series([3])) == series([3])


@given(st.lists(st.integers(min_value=0, max_value=1000), min_size=0, max_size=60))
def test_prefix_that_does_not_end_falling(levels):
    """Reference model: the result is the input, or a prefix of it that ends
    with a bucket not below its predecessor, cutting at most 5 % of the span."""
    b = series(levels)
    out = before_teardown(b)
    assert out == b[: len(out)] and len(out) >= 1 if b else out == b
    if len(out) < len(b):
        assert len(out) >= 2 and out[-1].last >= out[-2].last
        assert all(b[i].last < b[i - 1].last for i in range(len(out), len(b)))
        assert b[-1].start - b[len(out)].start <= 0.05 * (b[-1].start - b[0].start)
