"""Progress during analysis: the bar is fed from the event stream and changes nothing."""

from __future__ import annotations

import io
from pathlib import Path

from heaplint.engine.analyze import _ticking, analyze
from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.progress import Progress

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "leaky-service.jsonl.gz")


def test_ticking_passes_events_through_and_draws():
    out = io.StringIO()
    clock = iter(range(0, 10_000, 1)).__next__  # one second per reading
    position = iter(range(0, 10**9, 1000)).__next__
    bar = Progress(10**6, position, True, label="t.jsonl", stream=out, clock=lambda: float(clock()), delay=0.0)
    events = [HeapEvent(Kind.ALLOC, i, 1, address=16 * (i + 1), size=8) for i in range(200_000)]
    with bar:
        seen = list(_ticking(iter(events), bar))
    assert seen == events
    drawn = out.getvalue()
    assert "t.jsonl" in drawn and "196,608 events" in drawn  # three ticks: 65,536 x 1..3


def test_progress_changes_no_result(capsys):
    quiet = analyze([EXAMPLE], use_config=False)
    shown = analyze([EXAMPLE], use_config=False, progress=True)
    assert [f.fingerprint for f in shown.findings] == [f.fingerprint for f in quiet.findings]
    assert shown.exit_status == quiet.exit_status == 1
