"""Real AnalysisResult objects for the report tests.

Traces are replayed for real (HeapEvent -> Replay -> stats and quality), so
the stats, quality and live-bytes series the reports show are what the engine
produces; the findings are constructed the way a rule would construct them.
"""

from __future__ import annotations

from heaplint.engine.events import HeapEvent, Kind, TraceInfo
from heaplint.engine.findings import AnalysisResult, Finding, RuleMeta, Severity, TraceResult, fingerprint
from heaplint.engine.replay import Replay
from heaplint.engine.stats import stats_document, trace_quality

MS = 1_000_000
HOSTILE_IMAGE = 'C:\\evil\\<script>alert("x")</script>,a:b%0A.exe'
HOSTILE_MESSAGE = 'leak "</td><script>alert(1)</script>" 100%\r\n::error file=x::pwned\x1b[31m & <img src=x onerror=alert(2)>'
HOSTILE_FRAME = "evil!<svg onload=alert(3)>+0x10"

RULES = [
    RuleMeta("HL001", "leak-at-exit", "Leak at process exit", "Blocks still live when the process ended.", Severity.ERROR, ("leak",), "builtin:leaks.yaml"),
    RuleMeta("HL002", "double-free", "Double free", "A block freed twice.", Severity.ERROR, ("integrity",), "builtin:integrity.yaml"),
    RuleMeta("HL010", "realloc-churn", "Realloc churn", "Many slow-path reallocs in a short window.", Severity.WARNING, ("perf",), "builtin:perf.yaml"),
    RuleMeta("HL020", "large-alloc", "Large allocation", "A single very large block.", Severity.NOTE, ("info",), "builtin:perf.yaml"),
    RuleMeta("HL030", "heap-growth", "Heap growth", "Monotonic growth of live bytes.", Severity.WARNING, ("leak",), "builtin:leaks.yaml"),
    RuleMeta("HL099", "disabled-rule", "A disabled rule", "Not run.", Severity.NOTE, (), "builtin:misc.yaml", enabled=False),
]


def replay(path: str, events: list[HeapEvent]) -> TraceResult:
    """Replay ``events`` and wrap the outcome in a TraceResult without findings."""
    info = TraceInfo(path=path, format="heaplint-jsonl")
    rp = Replay()
    rp.run(events)
    series = {}
    for proc in rp.state.all_processes():
        for heap in proc.all_heaps():
            series[(proc.pid, heap.handle)] = [(b.start, b.last) for b in heap.series.snapshot()]
    return TraceResult(
        path=path,
        info=info,
        quality=trace_quality(info, rp),
        findings=[],
        stats=stats_document(info, rp),
        series=series,
    )


def _events(pid: int, image: str, heap: int, n: int, leak_every: int) -> list[HeapEvent]:
    evs = [HeapEvent(Kind.PROCESS_START, 0, pid, image=image, index=0)]
    t = MS
    idx = 1
    for i in range(n):
        addr = 0x10000 + i * 0x100
        evs.append(HeapEvent(Kind.ALLOC, t, pid, 1, heap, addr, 64 + i, index=idx))
        idx += 1
        t += MS
        if i % leak_every:
            evs.append(HeapEvent(Kind.FREE, t, pid, 1, heap, addr, index=idx))
            idx += 1
            t += MS
    evs.append(HeapEvent(Kind.PROCESS_END, t, pid, image=image, index=idx))
    return evs


def sample_result(hostile: bool = False, trace_a: str = "traces/app.etl", trace_b: str = "traces/svc.etl") -> AnalysisResult:
    """Two traces, findings of four rules, one rule without findings, one disabled."""
    image = HOSTILE_IMAGE if hostile else "C:\\Program Files\\App\\app.exe"
    message = HOSTILE_MESSAGE if hostile else "3 blocks (1.2 KiB) still live at process exit"
    frames = (HOSTILE_FRAME if hostile else "app!Cache::Insert+0x2a", "app!main+0x10", "kernel32!BaseThreadInitThunk+0x14")
    a = replay(trace_a, _events(100, image, 0x5000, 40, 4))
    b = replay(trace_b, _events(200, "svc.exe", 0x7000, 30, 3))
    heap_a = "process-heap"
    a.findings = [
        Finding(
            "HL001", "leak-at-exit", Severity.ERROR, message, trace_a, pid=100, image=image, heap=0x5000,
            heap_label=heap_a, addresses=(0x10000, 0x10400), sizes=(64, 68), first_time=2 * MS, last_time=70 * MS,
            first_index=1, last_index=60, count=2, stack=frames, evidence={"bytes": 1200, "blocks": 3},
            fingerprint=fingerprint("HL001", image, heap_a, *frames),
        ),
        Finding(
            "HL002", "double-free", Severity.ERROR, "block 0x10100 freed twice", trace_a, pid=100, image=image,
            heap=0x5000, heap_label=heap_a, addresses=(0x10100,), sizes=(65,), first_time=30 * MS, first_index=12,
            fingerprint=fingerprint("HL002", image, heap_a, "size-class-64"), confidence="low",
        ),
        Finding(
            "HL010", "realloc-churn", Severity.WARNING, "52 slow-path reallocs within 10 ms", trace_a, pid=100,
            image=image, heap=0x5000, heap_label=heap_a, first_time=40 * MS, last_time=50 * MS, first_index=20,
            count=52, evidence={"window_ns": 10 * MS, "source": "SLOWPATH"},
            fingerprint=fingerprint("HL010", image, heap_a),
        ),
    ]
    b.findings = [
        Finding(
            "HL001", "leak-at-exit", Severity.ERROR, "10 blocks still live at process exit", trace_b, pid=200,
            image="svc.exe", heap=0x7000, heap_label=heap_a, sizes=(64,) * 10, first_time=5 * MS, count=10,
            stack=("svc!Worker::Run+0x44", "svc!main+0x8"), fingerprint=fingerprint("HL001", "svc.exe", heap_a, "svc!Worker::Run+0x44"),
        ),
        Finding(
            "HL020", "large-alloc", Severity.NOTE, "a 96 B block", trace_b, pid=200, image="svc.exe", heap=0x7000,
            heap_label=heap_a, addresses=(0x10200,), sizes=(96,), first_time=9 * MS, first_index=7,
            fingerprint=fingerprint("HL020", "svc.exe", heap_a, "size-class-128"),
        ),
    ]
    return AnalysisResult(traces=[a, b], rules=list(RULES))
