"""Named presets of ``heaplint synth``: ready-made :class:`SynthSpec` values.

Every preset is healthy unless its name is a defect (``leak``,
``double-free``, ...) or defects are added with ``inject``.  ``build_spec``
applies the command-line overrides (events, processes, duration, attach,
lost events, disorder, injected defects, live blocks) on top of a preset.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import Callable

from heaplint.engine.errors import UsageError
from heaplint.engine.synth import SECOND, ProcessSpec, SynthSpec, WorkloadSpec
from heaplint.engine.synth_stacks import IMAGES

W = WorkloadSpec

#: healthy process templates, by image (cycled when more processes are asked for)
TEMPLATES: dict[str, tuple[WorkloadSpec, ...]] = {
    "render.exe": (
        W("cache", 2.0),
        W("sawtooth", 2.0, heap="frame"),
        W("lfh-churn", 2.0),
        W("grow-buffer", 1.0),
        W("slowpath-burst", 0.0, heap="staging"),
    ),
    "netsvc.exe": (
        W("lfh-churn", 3.0),
        W("temp-churn", 1.5),
        W("warmup", 1.5),
        W("grow-buffer", 1.0),
        W("scratch-heap", 1.0),
    ),
    "indexer.exe": (
        W("resident", 2.0, heap="index"),
        W("temp-churn", 2.0),
        W("grow-buffer", 1.5),
        W("lfh-churn", 1.0),
    ),
    "audiosvc.exe": (W("lfh-churn", 2.0), W("cache", 1.0, params={"size": "small"}), W("grow-buffer", 1.0)),
    "updater.exe": (W("warmup", 1.0), W("temp-churn", 1.0), W("grow-buffer", 1.0), W("scratch-heap", 1.0)),
    "thumbgen.exe": (W("cache", 1.5), W("sawtooth", 1.0, heap="tiles"), W("lfh-churn", 1.0), W("grow-buffer", 1.0)),
}


def _image(i: int) -> str:
    return IMAGES[i] if i < len(IMAGES) else f"worker{i - len(IMAGES) + 1}.exe"


def _templated(n: int, order: tuple[str, ...] = IMAGES, **overrides) -> tuple[ProcessSpec, ...]:
    out = []
    for i in range(n):
        image = order[i % len(order)] if i < len(order) else _image(i)
        base = order[i % len(order)]
        out.append(ProcessSpec(image, TEMPLATES[base], **overrides))
    return tuple(out)


def _focused(n: int, workloads: tuple[WorkloadSpec, ...], images: tuple[str, ...] = IMAGES) -> tuple[ProcessSpec, ...]:
    return tuple(ProcessSpec(images[i] if i < len(images) else _image(i), workloads) for i in range(n))


@dataclass(frozen=True)
class Preset:
    description: str
    build: Callable[[int], tuple[ProcessSpec, ...]]  # processes -> specs
    processes: int = 2
    events: int = 20_000
    attach: bool = False
    lost_per_mille: int = 0  # lost events per 1000 events
    disorder_ns: int = 0
    inject: tuple[str, ...] = ()
    realloc_shape: str = "mixed"


_SERVICE = (
    W("lfh-churn", 3.0),
    W("temp-churn", 1.0),
    W("cache", 1.0, heap="sessions", params={"size": "small"}),
    W("grow-buffer", 1.0, heap="sessions"),
)

PRESETS: dict[str, Preset] = {
    "healthy-cache": Preset(
        "caches that fill on misses and then plateau, with LFH churn and grown buffers",
        lambda n: _focused(n, (W("cache", 3.0), W("lfh-churn", 1.0), W("grow-buffer", 0.5))),
    ),
    "healthy-sawtooth": Preset(
        "frame batches on a private heap: allocate a batch, free it all, back to the base",
        lambda n: _focused(n, (W("sawtooth", 3.0, heap="frame"), W("lfh-churn", 1.0), W("grow-buffer", 0.5))),
    ),
    "healthy-warmup": Preset(
        "a warm-up ramp in the first 30% of the run, then a level steady state",
        lambda n: _focused(n, (W("warmup", 3.0), W("lfh-churn", 1.0), W("temp-churn", 1.0))),
    ),
    "lfh-churn": Preset(
        "many small short-lived blocks and temporaries on several threads",
        lambda n: _focused(n, (W("lfh-churn", 3.0), W("temp-churn", 2.0), W("grow-buffer", 0.5))),
    ),
    "attach": Preset(
        "the capture attaches to running processes: no process start, heaps created before it, "
        "frees and reallocs of blocks allocated before it",
        lambda n: _templated(n),
        attach=True,
    ),
    "lossy": Preset(
        "healthy processes, but the capture lost events in a few bursts (5 per 1000)",
        lambda n: _templated(n),
        lost_per_mille=5,
    ),
    "leak": Preset(
        "a service with a steady leak on its process heap (one stack), plus a healthy renderer",
        lambda n: (ProcessSpec("netsvc.exe", _SERVICE), *_templated(n - 1, ("render.exe", *IMAGES[2:]))) if n else (),
        inject=("leak",),
    ),
    "double-free": Preset("healthy processes plus double frees", lambda n: _templated(n), inject=("double-free",)),
    "unknown-free": Preset(
        "healthy processes plus frees of unknown addresses", lambda n: _templated(n), inject=("unknown-free",)
    ),
    "realloc-unknown": Preset(
        "healthy processes plus reallocs of unknown old addresses", lambda n: _templated(n), inject=("realloc-unknown",)
    ),
    "overlap": Preset(
        "healthy processes plus allocations inside live blocks", lambda n: _templated(n), inject=("overlap",)
    ),
    "mixed": Preset(
        "every healthy workload across three processes, with per-CPU disorder (2ms)",
        lambda n: _templated(n),
        processes=3,
        events=40_000,
        disorder_ns=2_000_000,
    ),
    "steady": Preset(
        "a level workload whose live set does not depend on the trace length (memory tests)",
        lambda n: _focused(
            n,
            (
                W("lfh-churn", 3.0, params={"live": 400}),
                W("cache", 1.0, params={"capacity": 300, "size": "small"}),
                W("temp-churn", 1.0),
                W("grow-buffer", 1.0),
            ),
        ),
        processes=1,
    ),
    "high-live-set": Preset(
        "an indexer that ends with a large live set (--live-blocks, default 1,000,000)",
        lambda n: tuple(
            ProcessSpec(
                _image(2) if i == 0 else _image(i + 2),
                (W("resident", 6.0), W("lfh-churn", 1.0), W("temp-churn", 0.5)),
                shutdown="none",
            )
            for i in range(n)
        ),
        processes=1,
        events=0,  # derived from the live blocks
    ),
    "busy-2proc": Preset(
        "two equally busy processes (parallel replay benchmarks)",
        lambda n: tuple(ProcessSpec(_image(i), TEMPLATES["netsvc.exe"]) for i in range(n)),
        events=100_000,
    ),
}

DEFAULT_LIVE_BLOCKS = 1_000_000


def preset(name: str) -> Preset:
    """The preset ``name``; an unknown name is a usage error with a suggestion."""
    try:
        return PRESETS[name]
    except KeyError:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UsageError(f"unknown preset '{name}'{hint}; known: {', '.join(PRESETS)}") from None


def build_spec(
    name: str,
    *,
    seed: int = 0,
    events: int | None = None,
    processes: int | None = None,
    duration_ns: int | None = None,
    inject: tuple[str, ...] = (),
    attach: bool | None = None,
    lost_events: int | None = None,
    disorder_ns: int | None = None,
    live_blocks: int | None = None,
    realloc_shape: str | None = None,
    defect_count: int | None = None,
) -> SynthSpec:
    """A spec for preset ``name`` with the given overrides (``None``: the
    preset's own value)."""
    p = preset(name)
    n = processes if processes is not None else p.processes
    if n < 1:
        raise UsageError("--processes must be at least 1")
    procs = p.build(n)
    if live_blocks is not None and name != "high-live-set":
        raise UsageError("--live-blocks applies to the high-live-set preset only")
    if name == "high-live-set":
        live = live_blocks if live_blocks is not None else DEFAULT_LIVE_BLOCKS
        if live < 1:
            raise UsageError("--live-blocks must be at least 1")
        per_proc = max(1, live // n)
        procs = tuple(
            replace(
                ps,
                workloads=tuple(
                    replace(w, params={"live_blocks": per_proc}) if w.kind == "resident" else w for w in ps.workloads
                ),
            )
            for ps in procs
        )
        # the index fills in the first ~half of the run, then replaces entries
        default_events = int(live * 2.4)
    else:
        default_events = p.events
    total = events if events is not None else default_events
    lost = lost_events if lost_events is not None else total * p.lost_per_mille // 1000
    merged_inject = tuple(dict.fromkeys((*p.inject, *inject)))
    return SynthSpec(
        processes=procs,
        seed=seed,
        events=total,
        duration_ns=duration_ns if duration_ns is not None else 60 * SECOND,
        attach=p.attach if attach is None else attach,
        lost_events=lost,
        disorder_ns=p.disorder_ns if disorder_ns is None else disorder_ns,
        realloc_shape=realloc_shape or p.realloc_shape,
        inject=merged_inject,
        defect_count=defect_count if defect_count is not None else 2,
        preset=name,
    )


#: the healthy workloads a labelled corpus is built on (issue: rule quality bar)
CORPUS_BASES: tuple[str, ...] = ("healthy-cache", "healthy-sawtooth", "healthy-warmup", "lfh-churn", "attach", "lossy")


def corpus_specs(events: int = 4000, seed: int = 0) -> list[tuple[str, SynthSpec]]:
    """A labelled corpus: every base healthy as it is, then with each defect
    injected alone.  Names are ``base`` or ``base+defect``; each spec's truth
    lists the rules that should fire (``expected_rules``; empty when healthy)."""
    from heaplint.engine.synth_defects import DEFECTS

    cases = []
    for base in CORPUS_BASES:
        cases.append((base, build_spec(base, seed=seed, events=events)))
        for defect in DEFECTS:
            cases.append((f"{base}+{defect}", build_spec(base, seed=seed, events=events, inject=(defect,))))
    return cases
