"""Series: bounded buckets of a counter, checked against a brute-force model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heaplint.engine.series import Bucket, Series


def brute_force(samples: list[tuple[int, int]], width: int) -> list[Bucket]:
    """Group samples by the ``width``-aligned slot their time falls in."""
    slots: dict[int, list[int]] = {}
    for t, v in samples:
        slots.setdefault(t - t % width, []).append(v)
    return [Bucket(start, min(vs), max(vs), vs[-1]) for start, vs in sorted(slots.items())]


def slot_count(samples: list[tuple[int, int]], width: int) -> int:
    return len({t - t % width for t, _ in samples})


# nondecreasing times: random steps, from tiny to far beyond a bucket
steps = st.lists(
    st.tuples(st.one_of(st.integers(0, 3), st.integers(0, 40), st.integers(0, 10**6)), st.integers(-50, 50)),
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(steps, st.integers(2, 9), st.sampled_from([1, 3, 10]))
def test_series_matches_brute_force(steps, cap, width):
    series = Series(cap=cap, width=width)
    samples = []
    t = 0
    for dt, v in steps:
        t += dt
        series.add(t, v)
        samples.append((t, v))
        assert len(series) <= cap
    got = series.snapshot()
    assert len(got) == len(series) <= cap
    assert got == brute_force(samples, series.width)
    # the finest width (initial width times a power of two) that fits
    assert series.width % width == 0 and (series.width // width) & (series.width // width - 1) == 0
    if series.width > width:
        assert slot_count(samples, series.width // 2) > cap


def test_sparse_samples_stay_within_the_cap():
    # far apart samples: one doubling of the width merges nothing
    series = Series(cap=4, width=1)
    for i in range(40):
        series.add(i * 1_000_000, i)
    assert len(series) <= 4
    starts = [b.start for b in series.snapshot()]
    assert starts == sorted(set(starts))


def test_empty_and_single():
    series = Series()
    assert series.snapshot() == [] and len(series) == 0
    series.add(5_500_000, 7)
    assert series.snapshot() == [Bucket(5_000_000, 7, 7, 7)]


def test_cap_below_two_is_refused():
    with pytest.raises(ValueError):
        Series(cap=1)
