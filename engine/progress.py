"""A progress bar on stderr for long traces, and nothing otherwise.

The analysis loop calls :meth:`Progress.tick` every 64k events or so.  A tick
costs one clock read and a comparison until it is time to redraw; the bar
appears only once a trace has taken ``delay`` seconds (2 s by default), so short
runs and CI logs stay clean, and it is only enabled on a terminal without
``--quiet`` (:func:`progress_wanted`).  The bar shows bytes read of the total
(from ``TraceInput.position()`` / ``total_bytes``) and events per second.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

from heaplint.engine.units import format_size

DEFAULT_DELAY_S = 2.0
REDRAW_EVERY_S = 0.2
BAR_WIDTH = 28


def progress_wanted(quiet: bool, stream: TextIO | None = None) -> bool:
    """True when a progress bar may be drawn: not quiet and stderr is a terminal."""
    stream = stream if stream is not None else sys.stderr
    if quiet:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Progress of one trace.

    ``position_fn`` returns the bytes of the file consumed so far (or None when
    unknown); ``total_bytes`` is the file size (None for stdin).  ``clock`` and
    ``stream`` are injectable for tests.
    """

    __slots__ = (
        "total_bytes", "position_fn", "enabled", "label", "stream", "clock",
        "delay", "_start", "_next_draw", "_drawn", "_events",
    )

    def __init__(
        self,
        total_bytes: int | None,
        position_fn: Callable[[], int | None],
        enabled: bool,
        *,
        label: str = "",
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        delay: float = DEFAULT_DELAY_S,
    ) -> None:
        self.total_bytes = total_bytes
        self.position_fn = position_fn
        self.enabled = enabled
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.delay = delay
        self._start = clock() if enabled else 0.0
        self._next_draw = self._start + delay
        self._drawn = False
        self._events = 0

    @classmethod
    def for_input(cls, trace_input, enabled: bool, **kwargs) -> "Progress":
        """A progress bar for an opened ``TraceInput`` (its position and size)."""
        return cls(trace_input.total_bytes, trace_input.position, enabled, **kwargs)

    def tick(self, events: int) -> None:
        """Record that ``events`` events (in total, so far) have been processed;
        redraw at most every 0.2 s once the trace has taken ``delay`` seconds."""
        if not self.enabled:
            return
        self._events = events
        now = self.clock()
        if now < self._next_draw:
            return
        self._next_draw = now + REDRAW_EVERY_S
        self._draw(now)

    def line(self, now: float) -> str:
        """The bar's text at time ``now`` (without the carriage return)."""
        elapsed = max(now - self._start, 1e-9)
        rate = self._events / elapsed
        position = self.position_fn()
        parts = [self.label] if self.label else []
        if position is not None and self.total_bytes:
            frac = min(max(position / self.total_bytes, 0.0), 1.0)
            filled = int(frac * BAR_WIDTH)
            parts.append("[" + "#" * filled + "." * (BAR_WIDTH - filled) + f"] {frac * 100:3.0f}%")
            parts.append(f"{format_size(position)} / {format_size(self.total_bytes)}")
        elif position is not None:
            parts.append(f"{format_size(position)} read")
        parts.append(f"{self._events:,} events, {_rate(rate)} events/s")
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        text = self.line(now)
        try:
            self.stream.write("\r\x1b[K" + text)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False  # stderr went away; keep analysing quietly
            return
        self._drawn = True

    def close(self) -> None:
        """Erase the bar if one was drawn."""
        if self._drawn:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
        self._drawn = False
        self.enabled = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rate(per_second: float) -> str:
    if per_second >= 1e6:
        return f"{per_second / 1e6:.1f}M"
    if per_second >= 1e3:
        return f"{per_second / 1e3:.1f}k"
    return f"{per_second:.0f}"
