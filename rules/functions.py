"""The function table of the expression language (part of the registry).

A :class:`FunctionDef` declares parameter types, result type, the scopes it
may be used in, and ``build(scope, args, consts)`` which returns the closure
for one call site: ``args`` are the compiled argument closures, ``consts``
their constant values (None where not constant).  Arguments listed in
``const_args`` must be constants (glob patterns, window counts), so their
preparation happens once at compile time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from heaplint.rules import trend
from heaplint.rules import types as T
from heaplint.rules.context import Ctx, event_process
from heaplint.rules.globs import compile_glob

EVENT, ANOMALY, BLOCK, HEAP, PROCESS, TRACE, COVERAGE = (
    "event", "anomaly", "block", "heap", "process", "trace", "coverage",
)
NUMBER = "number"  # any numeric type
PATTERNS = "string|list[string]"  # a glob or a list of globs

Fn = Callable[[Ctx], Any]


@dataclass(frozen=True)
class FunctionDef:
    """A function callable from expressions."""

    name: str
    params: tuple[tuple[str, str], ...]
    returns: str  # a type, "=0" (first argument's type) or "=unify" (common type of the arguments)
    doc: str
    scopes: frozenset[str]
    build: Callable[[str, Sequence[Fn], Sequence[Any]], Fn]
    const_args: tuple[int, ...] = ()
    pure: bool = False  # folded at compile time when every argument is constant

    def signature(self) -> str:
        args = ", ".join(f"{n}: {t}" for n, t in self.params)
        ret = {"=0": "same as argument", "=unify": "common type of the arguments"}.get(self.returns, self.returns)
        return f"{self.name}({args}) -> {ret}"


@dataclass(frozen=True)
class AggregateDef:
    """An aggregate over window events or live blocks: ``name(value where cond)``."""

    name: str
    takes_value: bool
    doc: str
    window_only: bool = False

    def signature(self) -> str:
        inner = "value where condition" if self.takes_value else "where condition"
        return f"{self.name}({inner})"

    def result(self, value_type: str | None) -> str:
        if self.name in ("count",):
            return T.INT
        if self.name == "rate":
            return T.FLOAT
        assert value_type is not None
        if self.name == "avg" and value_type in T.UNITLESS:
            return T.FLOAT
        return value_type


_ALL = frozenset({EVENT, ANOMALY, BLOCK, HEAP, PROCESS, TRACE, COVERAGE})
_EV = frozenset({EVENT, ANOMALY})
_EV_END = frozenset({EVENT, ANOMALY, BLOCK, HEAP, PROCESS})
_HEAPISH = frozenset({EVENT, ANOMALY, BLOCK, HEAP})
_STACKISH = frozenset({EVENT, ANOMALY, BLOCK})
_SERIES = frozenset({HEAP, PROCESS})


def _heap_of(scope: str) -> Fn:
    if scope in _EV:
        return lambda c: c.state.heap(c.ev.pid, c.ev.heap)
    return lambda c: c.heaprec


def _proc_of(scope: str) -> Fn:
    if scope in _EV:
        return event_process
    return lambda c: c.proc


def _heap_value(attr: str) -> Callable[[str, Sequence[Fn], Sequence[Any]], Fn]:
    def build(scope: str, args: Sequence[Fn], consts: Sequence[Any]) -> Fn:
        heap = _heap_of(scope)
        if attr == "live_blocks":
            return lambda c: len(h.blocks) if (h := heap(c)) is not None else 0
        return lambda c: getattr(h, attr) if (h := heap(c)) is not None else 0

    return build


def _proc_value(attr: str) -> Callable[[str, Sequence[Fn], Sequence[Any]], Fn]:
    def build(scope: str, args: Sequence[Fn], consts: Sequence[Any]) -> Fn:
        proc = _proc_of(scope)
        return lambda c: getattr(p, attr) if (p := proc(c)) is not None else 0

    return build


def _block_lookup(what: str) -> Callable[[str, Sequence[Fn], Sequence[Any]], Fn]:
    def build(scope: str, args: Sequence[Fn], consts: Sequence[Any]) -> Fn:
        (addr,) = args

        def look(c: Ctx):
            ev = c.ev
            return c.state.block(ev.pid, ev.heap, addr(c))

        if what == "known":
            return lambda c: look(c) is not None
        if what == "size":
            return lambda c: b.size if (b := look(c)) is not None else 0
        return lambda c: c.ev.time - b.time if (b := look(c)) is not None else 0

    return build


#: distinct stacks whose glob verdicts one stack_has() call site remembers
_STACK_CACHE_MAX = 65536


def _has_anomaly(scope: str, args: Sequence[Fn], consts: Sequence[Any]) -> Fn:
    (kind,) = args
    return lambda c: any(a.kind == kind(c) for a in c.anomalies)


def _stack_id(scope: str) -> Fn:
    return (lambda c: c.block.stack) if scope == BLOCK else (lambda c: c.ev.stack)


def _frames(scope: str) -> Callable[[Ctx], tuple[str, ...]]:
    sid = _stack_id(scope)
    return lambda c: c.stacks.get(s, ()) if (s := sid(c)) is not None else ()


def _stack_has(scope: str, args: Sequence[Fn], consts: Sequence[Any]) -> Fn:
    patterns = consts[0] if isinstance(consts[0], (list, tuple)) else [consts[0]]
    matchers = [compile_glob(p) for p in patterns]
    frames = _frames(scope)
    event_scope = scope != BLOCK
    # a trace names few distinct stacks but matches them on every event:
    # remember the verdict per frames tuple (safe across traces, unlike ids)
    cache: dict[tuple[str, ...], bool] = {}

    def stack_has(c: Ctx) -> bool:
        if event_scope:  # the event's frames without the two getter calls of frames()
            fs = c.stacks.get(s, ()) if (s := c.ev.stack) is not None else ()
        else:
            fs = frames(c)
        hit = cache.get(fs)
        if hit is None:
            hit = any(m(f) for f in fs for m in matchers)
            if len(cache) >= _STACK_CACHE_MAX:
                cache.clear()
            cache[fs] = hit
        return hit

    return stack_has


def _frame(scope: str, args: Sequence[Fn], consts: Sequence[Any]) -> Fn:
    frames = _frames(scope)
    (i,) = args
    def frame(c: Ctx) -> str:
        n = i(c)
        fs = frames(c)
        return fs[n] if type(n) is int and 0 <= n < len(fs) else ""

    return frame


def _top_frame(scope: str, args: Sequence[Fn], consts: Sequence[Any]) -> Fn:
    frames = _frames(scope)
    return lambda c: fs[0] if (fs := frames(c)) else ""


def _stack_depth(scope: str, args: Sequence[Fn], consts: Sequence[Any]) -> Fn:
    frames = _frames(scope)
    return lambda c: len(frames(c))


def _series(fn: Callable[..., Any]) -> Callable[[str, Sequence[Fn], Sequence[Any]], Fn]:
    def build(scope: str, args: Sequence[Fn], consts: Sequence[Any]) -> Fn:
        if not args:
            return lambda c: fn(c.buckets)
        (a,) = args
        return lambda c: fn(c.buckets, a(c))

    return build


def _pure(op: Callable[..., Any]) -> Callable[[str, Sequence[Fn], Sequence[Any]], Fn]:
    def build(scope: str, args: Sequence[Fn], consts: Sequence[Any]) -> Fn:
        if len(args) == 1:
            (a,) = args
            return lambda c: op(a(c))
        a, b = args
        return lambda c: op(a(c), b(c))

    return build


def _def(name, params, returns, doc, scopes, build, const_args=(), pure=False) -> FunctionDef:
    return FunctionDef(name, tuple(params), returns, doc, frozenset(scopes), build, tuple(const_args), pure)


FUNCTION_LIST: list[FunctionDef] = [
    _def("abs", [("x", NUMBER)], "=0", "absolute value", _ALL, _pure(abs), pure=True),
    _def("least", [("a", NUMBER), ("b", NUMBER)], "=unify", "the smaller of two numbers", _ALL, _pure(min), pure=True),
    _def("greatest", [("a", NUMBER), ("b", NUMBER)], "=unify", "the larger of two numbers", _ALL, _pure(max), pure=True),
    _def("known", [("addr", T.ADDRESS)], T.BOOL, "a live block starts at addr on the event's heap (after the event)",
         _EV, _block_lookup("known")),
    _def("block_size", [("addr", T.ADDRESS)], T.SIZE, "size of the live block at addr on the event's heap (0 if none)",
         _EV, _block_lookup("size")),
    _def("block_age", [("addr", T.ADDRESS)], T.DURATION,
         "time since the live block at addr on the event's heap was made (0 if none)", _EV, _block_lookup("age")),
    _def("has_anomaly", [("kind", T.ANOMALY)], T.BOOL, "the event revealed an anomaly of this kind", _EV, _has_anomaly),
    _def("live_bytes", [], T.SIZE, "live bytes of the heap (the event's, the block's, or the scope's heap)",
         _HEAPISH, _heap_value("live_bytes")),
    _def("live_blocks", [], T.INT, "live blocks of the heap", _HEAPISH, _heap_value("live_blocks")),
    _def("peak_live_bytes", [], T.SIZE, "peak live bytes of the heap so far", _HEAPISH, _heap_value("peak_bytes")),
    _def("process_live_bytes", [], T.SIZE, "live bytes of the process (all heaps)", _EV_END, _proc_value("live_bytes")),
    _def("process_live_blocks", [], T.INT, "live blocks of the process", _EV_END, _proc_value("live_blocks")),
    _def("process_peak_live_bytes", [], T.SIZE, "peak live bytes of the process so far", _EV_END,
         _proc_value("peak_bytes")),
    _def("stack_has", [("pattern", PATTERNS)], T.BOOL,
         "some frame of the stack matches the glob (or one of the list of globs); case-insensitive",
         _STACKISH, _stack_has, const_args=(0,)),
    _def("top_frame", [], T.STRING, "innermost frame of the stack ('' when unknown)", _STACKISH, _top_frame),
    _def("frame", [("i", T.INT)], T.STRING, "frame i of the stack, 0 = innermost ('' when absent)", _STACKISH, _frame),
    _def("stack_depth", [], T.INT, "number of frames of the stack (0 when unknown)", _STACKISH, _stack_depth),
    _def("slope", [], T.FLOAT, "least-squares growth of live bytes, in bytes per second", _SERIES, _series(trend.slope)),
    _def("theil_sen_slope", [], T.FLOAT, "median pairwise growth of live bytes (robust), bytes per second",
         _SERIES, _series(trend.theil_sen_slope)),
    _def("trend_z", [], T.FLOAT, "Mann-Kendall trend z-score of live bytes (> 2: significant rise)",
         _SERIES, _series(trend.trend_z)),
    _def("envelope_rising", [("windows", T.INT)], T.BOOL,
         "per-window minimum of live bytes never falls across `windows` equal time spans and ends higher",
         _SERIES, _series(trend.envelope_rising), const_args=(0,)),
    _def("envelope_rise_fraction", [("windows", T.INT)], T.FLOAT,
         "fraction of window-to-window steps where the per-window minimum strictly rose",
         _SERIES, _series(trend.envelope_rise_fraction), const_args=(0,)),
    _def("envelope_growth", [("windows", T.INT)], T.SIZE,
         "last window's minimum minus the first window's minimum", _SERIES, _series(trend.envelope_growth),
         const_args=(0,)),
    _def("growing_fraction", [], T.FLOAT, "fraction of the time the live bytes level was rising",
         _SERIES, _series(trend.growing_fraction)),
    _def("tail_slope", [("fraction", T.FLOAT)], T.FLOAT,
         "least-squares growth (bytes/s) over the last `fraction` of the series' time span",
         _SERIES, _series(trend.tail_slope)),
    _def("series_duration", [], T.DURATION, "time spanned by the series", _SERIES, _series(trend.duration)),
    _def("samples", [], T.INT, "number of series buckets (at most 512)", _SERIES, _series(len)),
    _def("series_min", [], T.SIZE, "lowest live bytes", _SERIES, _series(lambda b: min((x.low for x in b), default=0))),
    _def("series_max", [], T.SIZE, "highest live bytes", _SERIES, _series(lambda b: max((x.high for x in b), default=0))),
    _def("series_first", [], T.SIZE, "live bytes at the start of the series",
         _SERIES, _series(lambda b: b[0].last if b else 0)),
    _def("series_last", [], T.SIZE, "live bytes at the end of the series",
         _SERIES, _series(lambda b: b[-1].last if b else 0)),
]
FUNCTIONS: dict[str, FunctionDef] = {f.name: f for f in FUNCTION_LIST}

AGGREGATE_LIST: list[AggregateDef] = [
    AggregateDef("count", False, "number of window events (or live blocks) for which the condition holds"),
    AggregateDef("sum", True, "sum of the value over matching events or blocks"),
    AggregateDef("min", True, "smallest value over matching events or blocks (0 when none)"),
    AggregateDef("max", True, "largest value over matching events or blocks (0 when none)"),
    AggregateDef("avg", True, "mean value over matching events or blocks (0 when none)"),
    AggregateDef("rate", False, "matching events per second over the window (window rules only)", window_only=True),
]
AGGREGATES: dict[str, AggregateDef] = {a.name: a for a in AGGREGATE_LIST}
