"""The progress bar: silent when disabled or fast, drawn after the delay, erased at close."""

from __future__ import annotations

import io
import os

from heaplint.engine.progress import Progress, progress_wanted
from heaplint.engine.readers import TraceInput


class Clock:
    """A settable clock (time is an input of Progress, like the stream)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(position=lambda: 512, total=1024, enabled=True, **kw):
    clock, stream = Clock(), io.StringIO()
    return Progress(total, position, enabled, stream=stream, clock=clock, **kw), clock, stream


def test_nothing_before_the_delay_then_a_bar():
    p, clock, stream = make(label="t.etl")
    clock.now += 1.9
    p.tick(65_536)
    assert stream.getvalue() == ""
    clock.now += 0.2  # 2.1 s in
    p.tick(131_072)
    out = stream.getvalue()
    assert out.startswith("\r\x1b[K") and "t.etl" in out
    assert "[" + "#" * 14 + "." * 14 + "]  50%" in out
    assert "512 B / 1.0 KiB" in out
    assert "131,072 events, 62.4k events/s" in out
    p.close()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_redraws_are_rate_limited():
    p, clock, stream = make(delay=0)
    for i in range(1, 50):
        p.tick(i * 65_536)  # same instant: one draw only
    assert stream.getvalue().count("\r\x1b[K") == 1
    clock.now += 0.25
    p.tick(10**7)
    assert stream.getvalue().count("\r\x1b[K") == 2


def test_disabled_progress_never_writes_nor_reads_the_position():
    calls = []

    def position():
        calls.append(1)
        return 1

    p, clock, stream = make(position=position, enabled=False)
    clock.now += 60
    p.tick(10**9)
    p.close()
    assert stream.getvalue() == "" and calls == []


def test_unknown_total_and_unknown_position():
    p, clock, stream = make(position=lambda: 2048, total=None, delay=0)
    p.tick(10)
    assert "2.0 KiB read" in stream.getvalue() and "%" not in stream.getvalue()
    q, _, s2 = make(position=lambda: None, total=None, delay=0)
    q.tick(10)
    assert "read" not in s2.getvalue() and "10 events" in s2.getvalue()


def test_close_without_a_bar_writes_nothing():
    p, _, stream = make()
    p.tick(1)
    p.close()
    assert stream.getvalue() == ""


def test_wanted_only_on_a_terminal_without_quiet():
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            assert progress_wanted(False, tty) is True
            assert progress_wanted(True, tty) is False
        assert progress_wanted(False, io.StringIO()) is False
    finally:
        os.close(master)
        os.close(slave)


def test_for_input_follows_a_real_trace_input(tmp_path):
    trace = tmp_path / "t.bin"
    trace.write_bytes(b"x" * 100_000)
    clock, stream = Clock(), io.StringIO()
    with TraceInput(str(trace)) as ti:
        p = Progress.for_input(ti, True, stream=stream, clock=clock, delay=0)
        ti.stream.read(25_000)
        p.tick(1000)
    assert "25%" in stream.getvalue() and "97.7 KiB" in stream.getvalue()
