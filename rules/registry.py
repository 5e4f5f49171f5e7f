"""The one table of everything an expression can name: fields, enum constants
and functions (the functions live in :mod:`heaplint.rules.functions` and are
re-exported here).  The compiler resolves names only against these tables;
the docs (``heaplint rules doc --language``) are generated from them.

A *scope* says where an expression is evaluated:

``event``     per replayed event (``when:`` of event rules, ``where`` of windows)
``anomaly``   per anomaly of an event (rules that name an ``anomaly*`` field)
``block``     per live block at the end (``where`` of end rules with ``scope: blocks``)
``heap``      per live heap at the end (``scope: heap``)
``process``   per process at the end (``scope: process``, and ``scope: blocks`` outside aggregates)
``trace``     once per trace at the end (``scope: trace``)
``coverage``  when a finding is reported (``severity:`` and ``confidence:`` conditions)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from heaplint.engine import state as st
from heaplint.engine.events import KIND_NAMES, Source
from heaplint.rules import context as cx
from heaplint.rules import types as T
from heaplint.rules.context import Ctx
from heaplint.rules.inline import src_fn

EVENT, ANOMALY, BLOCK, HEAP, PROCESS, TRACE, COVERAGE = (
    "event", "anomaly", "block", "heap", "process", "trace", "coverage",
)
SCOPES = (EVENT, ANOMALY, BLOCK, HEAP, PROCESS, TRACE, COVERAGE)
#: where a name is looked up when it has no getter for the scope itself
FALLBACK = {ANOMALY: EVENT}

Getter = Callable[[Ctx], Any]


@dataclass(frozen=True)
class FieldDef:
    """A named value of the current event, block, heap, process or trace."""

    name: str
    type: str
    doc: str
    getters: Mapping[str, Getter] = field(default_factory=dict)

    def getter(self, scope: str) -> Getter | None:
        g = self.getters.get(scope)
        if g is None and scope in FALLBACK:
            g = self.getters.get(FALLBACK[scope])
        return g


@dataclass(frozen=True)
class ConstantDef:
    """An enum constant (or ``true``/``false``)."""

    name: str
    type: str
    value: Any
    doc: str


def _size_class(n: int) -> int:
    """Smallest power of two >= n (0 for 0): groups blocks of similar size."""
    return 1 << (n - 1).bit_length() if n > 0 else 0


#: "stack#ID" strings by stack id: window rules grouped by site look one up
#: per event (a cached string also keeps its hash); cleared when it gets large
_STACK_SITES: dict[int, str] = {}
_MAX_STACK_SITES = 65536


def site(stack: int | None, size: int) -> str:
    """Allocation site: the stack when known, else the size class."""
    if stack is None:
        return f"size:{_size_class(size)}"
    s = _STACK_SITES.get(stack)
    if s is None:
        if len(_STACK_SITES) >= _MAX_STACK_SITES:
            _STACK_SITES.clear()
        s = _STACK_SITES[stack] = f"stack#{stack}"
    return s


def _event_site(c: Ctx) -> str:
    e = c.ended
    if e is None:
        e = c.ev  # a HeapEvent has stack and size too
    stack = e.stack
    if stack is not None:
        s = _STACK_SITES.get(stack)  # the common case without a call to site()
        if s is not None:
            return s
    return site(stack, e.size)


def site_key(c: Ctx) -> tuple:
    """The group key of a window rule grouped ``by site``: ``(pid, site)``
    (one call instead of three; see runtime._key_of)."""
    ev = c.ev
    e = c.ended
    if e is None:
        e = ev
    stack = e.stack
    if stack is not None:
        s = _STACK_SITES.get(stack)
        if s is not None:
            return (ev.pid, s)
    return (ev.pid, site(stack, e.size))


def _result_block(c: Ctx) -> st.Block | None:
    ev = c.ev
    if ev.kind not in (2, 3):
        return None
    return c.state.block(ev.pid, ev.heap, ev.address)


def _ev_heap_label(c: Ctx) -> str:
    ev = c.ev
    proc = c.state.processes.get(ev.pid)  # state.heap() inlined: the common case in one call
    h = proc.heaps.get(ev.heap) if proc is not None else None
    if h is None:  # also a heap at its own HeapDestroy (retired by then)
        h = cx.event_heap(c.state, ev.pid, ev.heap)
    return h.label if h is not None else ""


def _lifetime(c: Ctx) -> int:
    e = c.ended
    return c.ev.time - e.time if e is not None else 0


def _f(name: str, type_: str, doc: str, **getters: Getter) -> FieldDef:
    return FieldDef(name, type_, doc, getters)


_COV = dict(
    process_start_seen=(
        T.BOOL, "the process's start is inside the trace (not attach mode)",
        lambda c: cx.start_seen(c, c.ev.pid, cx.event_process(c)), lambda c: cx.start_seen(c, c.pid, c.proc),
    ),
    process_end_seen=(
        T.BOOL, "the process's end is inside the trace",
        lambda c: cx.end_seen(c, c.ev.pid, cx.event_process(c)), lambda c: cx.end_seen(c, c.pid, c.proc),
    ),
    events_lost=(
        T.INT, "events the trace lost, plus those lost for this process (so far, at event time)",
        lambda c: cx.events_lost(c, c.ev.pid), lambda c: cx.events_lost(c, c.pid),
    ),
    trace_lossy=(
        T.BOOL, "the trace lost events or buffers or had disorder beyond the reorder window",
        cx.trace_lossy, cx.trace_lossy,
    ),
    full_coverage=(
        T.BOOL, "process_start_seen, nothing lost, no malformed records: integrity verdicts are conclusive",
        lambda c: cx.full_coverage(c, c.ev.pid, cx.event_process(c)), lambda c: cx.full_coverage(c, c.pid, c.proc),
    ),
)


def _coverage_fields() -> list[FieldDef]:
    out = []
    for name, (type_, doc, on_event, on_pid) in _COV.items():
        getters = {EVENT: on_event, **{s: on_pid for s in (BLOCK, HEAP, PROCESS, COVERAGE)}}
        if name in ("trace_lossy", "events_lost"):
            getters[TRACE] = (lambda c: cx.events_lost(c, None)) if name == "events_lost" else cx.trace_lossy
        out.append(FieldDef(name, type_, doc, getters))
    return out


_END = (BLOCK, HEAP, PROCESS)
_ALL_PID = (BLOCK, HEAP, PROCESS, COVERAGE)

FIELD_LIST: list[FieldDef] = [
    _f("kind", T.KIND, "record kind: create, alloc, realloc, free, destroy, process_start, process_end",
       event=lambda c: c.ev.kind),
    _f("time", T.DURATION, "trace time of the event; for a block, of the event that made it",
       event=lambda c: c.ev.time, block=lambda c: c.block.time),
    _f("index", T.INT, "ordinal of the event in the input; for a block, of the event that made it",
       event=lambda c: c.ev.index, block=lambda c: c.block.index),
    _f("pid", T.INT, "process id", event=lambda c: c.ev.pid, **{s: (lambda c: c.pid) for s in _ALL_PID}),
    _f("tid", T.INT, "thread id", event=lambda c: c.ev.tid),
    _f("image", T.STRING, "process image name ('' when unknown)",
       event=lambda c: c.ev.image or cx.image_of(c, c.ev.pid, cx.event_process(c)),
       **{s: (lambda c: cx.image_of(c, c.pid, c.proc)) for s in _ALL_PID}),
    _f("heap", T.ADDRESS, "heap handle", event=lambda c: c.ev.heap,
       block=lambda c: c.heaprec.handle, heap=lambda c: c.heaprec.handle),
    _f("heap_label", T.STRING, "stable heap identity, e.g. process-heap or heap#2/flags=0x2",
       event=_ev_heap_label, block=lambda c: c.heaprec.label, heap=lambda c: c.heaprec.label),
    _f("heap_created", T.BOOL, "the heap was created inside the trace",
       heap=lambda c: c.heaprec.created, block=lambda c: c.heaprec.created),
    _f("address", T.ADDRESS, "block address (for a realloc the new address)",
       event=lambda c: c.ev.address, block=lambda c: c.addr),
    _f("size", T.SIZE, "block size in bytes (for a realloc the new size)",
       event=lambda c: c.ev.size, block=lambda c: c.block.size),
    _f("size_class", T.SIZE, "size rounded up to a power of two (groups similar sizes)",
       event=lambda c: _size_class(c.ev.size), block=lambda c: _size_class(c.block.size)),
    _f("site", T.STRING, "allocation site: 'stack#ID' when the block has a stack, else 'size:CLASS'; "
       "for frees and reallocs the site of the block they ended",
       event=_event_site, block=lambda c: site(c.block.stack, c.block.size)),
    _f("old_address", T.ADDRESS, "realloc: the old address (0 for other kinds)", event=lambda c: c.ev.old_address),
    _f("old_size", T.SIZE, "realloc: the old size as recorded (0 when the record lacks it)",
       event=lambda c: c.ev.old_size or 0),
    _f("old_size_known", T.BOOL, "the record carried the old size", event=lambda c: c.ev.old_size is not None),
    _f("new_address", T.ADDRESS, "realloc: the new address (same as address)", event=lambda c: c.ev.address),
    _f("new_size", T.SIZE, "realloc: the new size (same as size)", event=lambda c: c.ev.size),
    _f("moving", T.BOOL, "a realloc whose new address differs from the old one",
       event=lambda c: c.ev.kind == 3 and c.ev.address != c.ev.old_address),
    _f("source", T.SOURCE, "where the heap manager served the block from (SLOWPATH, LFH, ...)",
       event=lambda c: c.ev.source, block=lambda c: c.block.source),
    _f("stack", T.STACK, "stack id (compare, group by, or inspect with stack_has/top_frame)",
       event=lambda c: c.ev.stack, block=lambda c: c.block.stack),
    _f("flags", T.INT, "heap create flags", event=lambda c: c.ev.flags, heap=lambda c: c.heaprec.flags),
    _f("ended", T.BOOL, "the event freed or moved a live block", event=src_fn("c.ended is not None")),
    _f("lifetime", T.DURATION, "age of the block the event freed or moved (0 when none)", event=_lifetime),
    _f("ended_size", T.SIZE, "size of the block the event freed or moved (0 when none)",
       event=lambda c: c.ended.size if c.ended is not None else 0),
    _f("ended_stack", T.STACK, "stack of the block the event freed or moved",
       event=lambda c: c.ended.stack if c.ended is not None else None),
    _f("moves", T.INT, "moving reallocs in the history of the resulting block (realloc chains)",
       event=lambda c: getattr(_result_block(c), "moves", 0), block=lambda c: c.block.moves),
    _f("copied", T.SIZE, "bytes copied by those moves",
       event=lambda c: getattr(_result_block(c), "copied", 0), block=lambda c: c.block.copied),
    _f("ended_moves", T.INT, "moving reallocs in the history of the block the event freed or moved",
       event=lambda c: c.ended.moves if c.ended is not None else 0),
    _f("ended_copied", T.SIZE, "bytes copied by the moves of the block the event freed or moved",
       event=lambda c: c.ended.copied if c.ended is not None else 0),
    _f("age", T.DURATION, "block: end_time minus the block's time", block=lambda c: c.end_time - c.block.time),
    _f("anomaly", T.ANOMALY, "the anomaly being evaluated (the rule runs once per anomaly of the event)",
       anomaly=lambda c: c.anom.kind),
    _f("anomaly_address", T.ADDRESS, "address the anomaly is about", anomaly=lambda c: c.anom.address),
    _f("anomaly_other", T.ADDRESS,
       "related address: the live block an interior free or overlap hits, the heap a wrong-heap free belongs to",
       anomaly=lambda c: c.anom.other),
    _f("anomaly_size", T.SIZE, "size the anomaly is about", anomaly=lambda c: c.anom.size),
    _f("anomaly_count", T.INT, "blocks involved (live blocks at a destroy or handle reuse)",
       anomaly=lambda c: c.anom.count),
    _f("anomaly_bytes", T.SIZE, "bytes involved (live bytes at a destroy or handle reuse)",
       anomaly=lambda c: c.anom.bytes),
    *_coverage_fields(),
    _f("start_time", T.DURATION, "first trace time of the process (its start when seen)",
       **{s: (lambda c: c.start_time) for s in _END}),
    _f("end_time", T.DURATION, "trace time at which the end rule runs (process end or trace end)",
       **{s: (lambda c: c.end_time) for s in (*_END, TRACE)}),
    _f("buffers_lost", T.INT, "buffers the trace lost", trace=lambda c: c.info.buffers_lost),
    _f("bad_records", T.INT, "malformed records skipped", trace=lambda c: c.info.bad_records),
    _f("out_of_order", T.INT, "events out of order beyond the reorder window",
       trace=lambda c: c.counters.out_of_order if c.counters is not None else 0),
    _f("event_count", T.INT, "events replayed", trace=lambda c: c.trace_events),
    _f("process_count", T.INT, "processes seen", trace=lambda c: len(c.state.all_processes())),
    _f("attached_processes", T.INT, "processes whose start is not in the trace",
       trace=lambda c: sum(1 for p in c.state.all_processes() if not cx.start_seen(c, p.pid, p))),
    _f("trace_duration", T.DURATION, "time from the first to the last event",
       trace=lambda c: (c.trace_last - c.trace_first) if c.trace_first is not None else 0),
]
FIELDS: dict[str, FieldDef] = {f.name: f for f in FIELD_LIST}
#: event fields whose getters read ``ctx.ended`` (the runtime looks the ended
#: block up only for event kinds whose rules name one of these)
READS_ENDED = frozenset({"site", "lifetime", "ended", "ended_size", "ended_stack", "ended_moves", "ended_copied"})

_ANOMALY_DOCS = {
    st.UNKNOWN_FREE: "free of an address that is not live on any heap of the process",
    st.INTERIOR_FREE: "free of an address inside a live block",
    st.DOUBLE_FREE: "free of an address freed before on the same heap",
    st.OVERLAP: "allocation overlapping a live block (that block is dropped)",
    st.WRONG_HEAP_FREE: "free on one heap of a block live on another",
    st.REALLOC_UNKNOWN_OLD: "realloc whose old address is not live on its heap",
    st.REALLOC_SIZE_MISMATCH: "realloc whose recorded old size differs from the live block's",
    st.ZERO_SIZE: "zero-byte allocation",
    st.ABSURD_SIZE: "allocation size too large to be real (not tracked)",
    st.NULL_ADDRESS: "record with a null address",
    st.DESTROY_WITH_LIVE_BLOCKS: "HeapDestroy while blocks are live",
    st.UNKNOWN_HEAP: "first event on a heap whose creation is not in the trace",
    st.HANDLE_REUSE: "HeapCreate returned the handle of a heap that is still live",
    st.OUT_OF_ORDER: "event out of order beyond the reorder window (counted in trace quality: use the "
                     "out_of_order field of trace end rules; event rules never see it)",
    st.INVALID_SOURCE: "record whose Source is INVALID (MEMORY_FROM_INVALID)",
}

CONSTANT_LIST: list[ConstantDef] = [
    ConstantDef("true", T.BOOL, True, "boolean true"),
    ConstantDef("false", T.BOOL, False, "boolean false"),
    *(ConstantDef(name, T.KIND, int(kind), f"kind of a {name} record") for kind, name in KIND_NAMES.items()),
    *(ConstantDef(s.name, T.SOURCE, int(s), f"source {s.name}") for s in Source),
    *(ConstantDef(k.upper().replace("-", "_"), T.ANOMALY, k, _ANOMALY_DOCS[k]) for k in st.ANOMALY_KINDS),
]
CONSTANTS: dict[str, ConstantDef] = {c.name: c for c in CONSTANT_LIST}

#: runtime value -> constant name, per enum type (for messages and canonical text)
ENUM_NAMES: dict[str, dict[Any, str]] = {
    t: {c.value: c.name for c in CONSTANT_LIST if c.type == t} for t in T.ENUMS
}

# functions and aggregates (imported last: they use the scope names above)
from heaplint.rules.functions import AGGREGATES, FUNCTIONS, AggregateDef, FunctionDef  # noqa: E402

__all__ = [
    "AGGREGATES", "ANOMALY", "BLOCK", "CONSTANTS", "COVERAGE", "ENUM_NAMES", "EVENT", "FIELDS", "FUNCTIONS",
    "HEAP", "PROCESS", "SCOPES", "TRACE", "AggregateDef", "ConstantDef", "FieldDef", "FunctionDef",
]
