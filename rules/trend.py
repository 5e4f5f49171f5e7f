"""Trend statistics over a bucketed live-bytes series (end-rule series functions).

Input is ``Series.snapshot()``: buckets ``(start, low, high, last)`` in trace
time.  The level of a bucket is its ``last`` value, its floor its ``low``.
Every function is O(n) or, for the pairwise statistics, O(m^2) on at most
:data:`MAX_PAIRWISE` evenly spaced points, so a 512-bucket series costs a few
milliseconds at most.  Functions return 0 / False on series too short to say.
"""

from __future__ import annotations

import math
from typing import Sequence

from heaplint.engine.series import Bucket

NS_PER_S = 1_000_000_000
MAX_PAIRWISE = 128


def _ols(points: Sequence[tuple[int, float]]) -> float:
    """Least-squares slope of y over t (per ns)."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mt) * (y - my) for t, y in points) / var


def _levels(buckets: Sequence[Bucket]) -> list[tuple[int, float]]:
    return [(b.start, float(b.last)) for b in buckets]


def _thin(points: list[tuple[int, float]], limit: int = MAX_PAIRWISE) -> list[tuple[int, float]]:
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def slope(buckets: Sequence[Bucket]) -> float:
    """Least-squares growth of the level, in bytes per second."""
    return _ols(_levels(buckets)) * NS_PER_S


def theil_sen_slope(buckets: Sequence[Bucket]) -> float:
    """Median of pairwise slopes of the level (robust to outliers), bytes/s."""
    pts = _thin(_levels(buckets))
    slopes = sorted(
        (y2 - y1) / (t2 - t1) for i, (t1, y1) in enumerate(pts) for t2, y2 in pts[i + 1 :] if t2 != t1
    )
    if not slopes:
        return 0.0
    mid = len(slopes) // 2
    med = slopes[mid] if len(slopes) % 2 else (slopes[mid - 1] + slopes[mid]) / 2
    return med * NS_PER_S


def trend_z(buckets: Sequence[Bucket]) -> float:
    """Mann-Kendall trend statistic of the level as a z-score: above ~2 means
    a significant upward trend, below ~-2 a downward one, near 0 none."""
    ys = [y for _, y in _thin(_levels(buckets))]
    n = len(ys)
    if n < 3:
        return 0.0
    s = 0
    for i in range(n - 1):
        yi = ys[i]
        for yj in ys[i + 1 :]:
            s += (yj > yi) - (yj < yi)
    ties: dict[float, int] = {}
    for y in ys:
        ties[y] = ties.get(y, 0) + 1
    var = (n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in ties.values())) / 18
    if var <= 0:
        return 0.0
    if s > 0:
        return (s - 1) / math.sqrt(var)
    if s < 0:
        return (s + 1) / math.sqrt(var)
    return 0.0


def envelope(buckets: Sequence[Bucket], windows: int) -> list[int]:
    """Per-window minimum (the floor) over ``windows`` equal spans of time;
    windows without samples are skipped."""
    if not buckets or windows < 1:
        return []
    t0 = buckets[0].start
    span = buckets[-1].start - t0 + 1
    mins: list[int | None] = [None] * windows
    for b in buckets:
        i = min(windows - 1, (b.start - t0) * windows // span)
        m = mins[i]
        if m is None or b.low < m:
            mins[i] = b.low
    return [m for m in mins if m is not None]


def envelope_rising(buckets: Sequence[Bucket], windows: int) -> bool:
    """The floor never falls from one window to the next and ends above where it began."""
    env = envelope(buckets, windows)
    if len(env) < 2:
        return False
    return all(b >= a for a, b in zip(env, env[1:])) and env[-1] > env[0]


def envelope_rise_fraction(buckets: Sequence[Bucket], windows: int) -> float:
    """Fraction of window-to-window steps in which the floor strictly rose."""
    env = envelope(buckets, windows)
    if len(env) < 2:
        return 0.0
    return sum(1 for a, b in zip(env, env[1:]) if b > a) / (len(env) - 1)


def envelope_growth(buckets: Sequence[Bucket], windows: int) -> int:
    """Floor of the last window minus floor of the first, in bytes."""
    env = envelope(buckets, windows)
    return env[-1] - env[0] if len(env) >= 2 else 0


def growing_fraction(buckets: Sequence[Bucket]) -> float:
    """Fraction of the series' time spent in buckets whose level rose."""
    if len(buckets) < 2:
        return 0.0
    total = buckets[-1].start - buckets[0].start
    if total <= 0:
        return 0.0
    grew = sum(b.start - a.start for a, b in zip(buckets, buckets[1:]) if b.last > a.last)
    return grew / total


def tail_slope(buckets: Sequence[Bucket], fraction: float) -> float:
    """Least-squares growth (bytes/s) over the last ``fraction`` of the time span."""
    if len(buckets) < 2:
        return 0.0
    t0, t1 = buckets[0].start, buckets[-1].start
    cut = t1 - (t1 - t0) * min(max(fraction, 0.0), 1.0)
    return _ols([(b.start, float(b.last)) for b in buckets if b.start >= cut]) * NS_PER_S


def duration(buckets: Sequence[Bucket]) -> int:
    return buckets[-1].start - buckets[0].start if buckets else 0


#: a trailing decline longer than this share of the series is part of the run, not its exit
TEARDOWN_MAX_FRACTION = 0.05


def before_teardown(buckets: Sequence[Bucket], max_fraction: float = TEARDOWN_MAX_FRACTION) -> Sequence[Bucket]:
    """The series without the teardown of a process that ended in the trace.

    A process that shuts down cleanly frees its working set within
    milliseconds of its end record; that final drop says nothing about how the
    heap behaved while the program ran, yet it would hide any growth from the
    envelope and tail statistics.  The teardown is the trailing run of buckets
    whose level fell below the bucket before; it is cut when it spans at most
    ``max_fraction`` of the series (a longer decline is real behaviour)."""
    n = len(buckets)
    i = n - 1
    while i > 0 and buckets[i].last < buckets[i - 1].last:
        i -= 1
    if i == n - 1 or i == 0:
        return buckets
    span = buckets[-1].start - buckets[0].start
    if buckets[-1].start - buckets[i + 1].start > span * max_fraction:
        return buckets
    return buckets[: i + 1]

