"""Realloc pairing: a moving ReAlloc alone and the same ReAlloc with its inner
Alloc(new)/Free(old) (in any order, before or after it) must replay the same.

Random traces are generated in the standalone shape, then rewritten into the
paired shape; ``auto`` must give identical state and anomalies for both, count
each move once and never report the old address as unknown because of the
inner Free.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from state_reference import (
    ABSURD,
    ALLOC,
    FREE,
    REALLOC,
    Model,
    alloc,
    anomaly_view,
    free,
    indexed,
    realloc,
    state_blocks,
)
from state_traces import (
    ORDERS,
    build,
    chaotic_ops,
    is_move,
    paired_shape,
    shape_draws,
    shape_stream,
    well_behaved,
    well_behaved_choices,
    noise_times,
    with_noise,
)

from heaplint.engine.errors import UsageError
from heaplint.engine.replay import Replay, ReplayOptions

H = 0xA0
A, B, C, D = 0x1000, 0x2000, 0x3000, 0x4000
US = 1_000  # one microsecond in ns


def replay(events, mode: str = "auto", **options) -> tuple[Replay, list]:
    """Run a replay; return it with every anomaly it reported, in order."""
    rp = Replay(ReplayOptions(realloc_mode=mode, **options))
    seen: list = []

    def on_event(ev, anomalies):
        seen.extend(anomalies)
        rp.state._check()

    rp.run(events, on_event)
    return rp, seen


def heap_counts(rp: Replay) -> list[tuple]:
    """Per process and heap (in order): counts of allocs, reallocs, frees."""
    return [
        (p.pid, h.handle, h.counts[ALLOC], h.counts[REALLOC], h.counts[FREE])
        for p in rp.state.all_processes()
        for h in p.all_heaps()
    ]


def model_of(events) -> tuple[Model, dict[tuple, list[str]]]:
    """The model's final state and anomaly kinds as :func:`by_thread` groups them."""
    model = Model()
    kinds: dict[tuple, list[str]] = {}
    for ev in events:
        for kind in model.apply(ev):
            key = ("unknown-heap", ev.pid, ev.heap) if kind == "unknown-heap" else (ev.pid, ev.tid)
            kinds.setdefault(key, []).append(kind)
    return model, kinds


def by_thread(anomalies, view=lambda a: a.kind) -> dict[tuple[int, int], list]:
    """Anomalies per thread of their record, in order, and unknown-heap per heap.

    Records held back by the pairing stage may be applied after other
    threads' records of the same moment (never out of their own thread's
    order), so which thread's record first touches a heap the trace never
    created, and reveals it, may change."""
    out: dict[tuple[int, int], list] = {}
    for a in anomalies:
        key = ("unknown-heap", a.pid, a.heap) if a.kind == "unknown-heap" else (a.event.pid, a.event.tid)
        out.setdefault(key, []).append(a.kind if a.kind == "unknown-heap" else view(a))
    return out


def full_view(anomaly) -> tuple:
    return anomaly_view([anomaly])[0]


def check_shapes_agree(standalone, paired) -> None:
    moves = sum(1 for ev in standalone if is_move(ev))
    rs, seen_s = replay(standalone)
    rp, seen_p = replay(paired)
    model, kinds = model_of(standalone)
    # the standalone trace replays as the reference model reads it
    assert state_blocks(rs.state) == model.live_blocks()
    assert by_thread(seen_s) == kinds
    assert rs.counters.paired_inner == 0
    # and the paired trace exactly as the standalone one
    assert state_blocks(rp.state) == state_blocks(rs.state)
    assert by_thread(seen_p, full_view) == by_thread(seen_s, full_view)
    assert heap_counts(rp) == heap_counts(rs)
    assert rp.counters.paired_inner == 2 * moves


@settings(max_examples=60, deadline=None)
@given(chaotic_ops, shape_draws)
def test_chaotic_traces_give_the_same_result_in_both_shapes(ops, draws):
    # 3 ms between records: whatever sits next to a move on its thread is
    # outside the pair window, so only the inserted records can pair
    standalone = build(ops, 3_000 * US)
    paired = indexed(paired_shape(standalone, shape_stream(draws)))
    check_shapes_agree(standalone, paired)


@settings(max_examples=100, deadline=None)
@given(well_behaved_choices, shape_draws, noise_times)
# a real Alloc held as a later move's candidate while another process's record passes it
@example([(0, 1, 0, 0), (0, 2, 0, 0), (3, 2, 0, 0)] + [(0, 0, 0, 0)] * 6 + [(3, 2, 0, 0)], [], [4999])
# ... while another thread's record is the first on the heap
@example([(0, 0, 1, 0)] + [(0, 0, 0, 0)] * 7 + [(1, 0, 1, 0), (3, 0, 1, 0)], [], [])
# a run opened on one thread while another thread's run holds one of its addresses
@example([(0, 0, 1, 0), (3, 0, 0, 0), (0, 0, 1, 0), (3, 0, 1, 0)], [], [])
# a real Alloc(X) taken for the inner record of a later move (X's block moved
# back), then that run broken: the Free right after it starts a nearer move's run
@example(
    [(0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 2, 0), (0, 0, 2, 0), (1, 0, 0, 0), (1, 0, 0, 0), (0, 0, 1, 0), (3, 0, 1, 0),
     (3, 0, 4, 0), (3, 0, 1, 0)],
    [(2, False)],
    [],
)  # fmt: skip
def test_dense_correct_programs_pair_only_inner_records(choices, draws, noise):
    # records 2 us apart, addresses reused at once: legitimate allocs and
    # frees of the addresses a move just used must not be taken for inner
    # ones; another thread's records fall anywhere, also inside the runs
    program = well_behaved(choices, gap=2 * US)
    standalone = indexed(with_noise(program, noise))
    paired = indexed(with_noise(paired_shape(program, shape_stream(draws), step=US // 2), noise))
    check_shapes_agree(standalone, paired)
    rs, seen = replay(standalone, "standalone")
    assert {a.kind for a in seen} <= {"unknown-heap"}  # the generator is correct
    ra, _ = replay(standalone)
    assert state_blocks(ra.state) == state_blocks(rs.state)
    rp, seen = replay(paired)
    assert {a.kind for a in seen} <= {"unknown-heap"}  # no realloc-unknown-old, no double free


def sanitized(events):
    # a move with a garbage size is not applied, but its inner Free would be
    return [ev._replace(size=8) if is_move(ev) and not 0 <= ev.size < ABSURD else ev for ev in events]


@settings(max_examples=40, deadline=None)
@given(chaotic_ops, shape_draws)
def test_explicit_modes_match_their_shapes(ops, draws):
    standalone = sanitized(build(ops, 3_000 * US))
    paired = indexed(paired_shape(standalone, shape_stream(draws)))
    auto, _ = replay(standalone)
    plain, _ = replay(standalone, "standalone")
    read_paired, _ = replay(paired, "paired")
    assert state_blocks(plain.state) == state_blocks(auto.state)
    assert state_blocks(read_paired.state) == state_blocks(auto.state)
    assert read_paired.counters.paired_inner == plain.counters.paired_inner == 0


# --- hand-written cases -------------------------------------------------------


def shaped(order: str, same_time: bool) -> list:
    """A live block at A moved to B (24 -> 48 bytes) with its inner records in ``order``."""
    base = [alloc(0, 1, H, A, 24)]
    parts = {"A": alloc(0, 1, H, B, 48), "F": free(0, 1, H, A), "R": realloc(0, 1, H, B, A, 48, 24)}
    t0 = 1_000 * US
    return indexed(base + [parts[x]._replace(time=t0 if same_time else t0 + i * US) for i, x in enumerate(order)])


@pytest.mark.parametrize("same_time", [False, True])
@pytest.mark.parametrize("order", ORDERS)
def test_each_order_moves_once(order, same_time):
    rp, seen = replay(shaped(order, same_time))
    assert [a.kind for a in seen] == ["unknown-heap"]
    assert state_blocks(rp.state) == {(1, H): {B: 48}}
    heap = rp.state.heap(1, H)
    assert heap.counts[REALLOC] == 1 and heap.counts[ALLOC] == 1 and heap.counts[FREE] == 0
    assert heap.blocks[B].moves == 1 and heap.blocks[B].copied == 24
    assert rp.counters.paired_inner == 2


@pytest.mark.parametrize("order", ORDERS)
def test_paired_mode_reads_the_inner_records(order):
    rp, seen = replay(shaped(order, False), "paired")
    assert state_blocks(rp.state) == {(1, H): {B: 48}}
    heap = rp.state.heap(1, H)
    assert heap.counts[REALLOC] == 1 and heap.counts[ALLOC] == 2 and heap.counts[FREE] == 1


def test_standalone_mode_reads_inner_records_literally():
    _, seen = replay(shaped("AFR", False), "standalone")
    assert [a.kind for a in seen] == ["unknown-heap", "double-free", "realloc-unknown-old", "overlap"]


def test_other_threads_between_inner_records_do_not_matter():
    events = [
        alloc(0, 1, H, A, 24),
        alloc(1_000 * US, 1, H, B, 48, tid=1),
        alloc(1_000 * US + 100, 1, H, C, 8, tid=2),
        free(1_000 * US + 200, 1, H, A, tid=1),
        free(1_000 * US + 300, 1, H, C, tid=2),
        realloc(1_000 * US + 400, 1, H, B, A, 48, 24, tid=1),
    ]
    rp, seen = replay(indexed(events))
    assert [a.kind for a in seen] == ["unknown-heap"]
    assert state_blocks(rp.state) == {(1, H): {B: 48}}


@pytest.mark.parametrize(
    "events, blocks, kinds",
    [
        pytest.param(
            # the moved block is freed and its address handed out again at once
            [alloc(0, 1, H, A, 8), realloc(10 * US, 1, H, B, A, 16), free(11 * US, 1, H, B), alloc(12 * US, 1, H, B, 32)],
            {B: 32},
            [],
            id="free-new-then-alloc-new",
        ),
        pytest.param(
            # the old address is reused by the next allocation and freed
            [alloc(0, 1, H, A, 8), realloc(10 * US, 1, H, B, A, 16), alloc(11 * US, 1, H, A, 8), free(12 * US, 1, H, A)],
            {B: 16},
            [],
            id="alloc-old-then-free-old",
        ),
        pytest.param(
            # a block freed, its address reused, and the new block moved away
            [alloc(0, 1, H, A, 8), free(10 * US, 1, H, A), alloc(11 * US, 1, H, A, 8), realloc(12 * US, 1, H, B, A, 16)],
            {B: 16},
            [],
            id="free-old-alloc-old-then-move",
        ),
        pytest.param(
            # a block allocated at the target, freed, then a move onto it
            [alloc(0, 1, H, A, 8), alloc(10 * US, 1, H, B, 8), free(11 * US, 1, H, B), realloc(12 * US, 1, H, B, A, 16)],
            {B: 16},
            [],
            id="alloc-new-free-new-then-move",
        ),
    ],
)
def test_legitimate_reuse_next_to_a_move_is_not_paired(events, blocks, kinds):
    rs, seen_s = replay(indexed(events), "standalone")
    ra, seen_a = replay(indexed(events))
    assert [a.kind for a in seen_s if a.kind != "unknown-heap"] == kinds
    assert state_blocks(rs.state) == {(1, H): blocks}
    assert state_blocks(ra.state) == {(1, H): blocks}
    assert anomaly_view(seen_a) == anomaly_view(seen_s)
    assert ra.counters.paired_inner == 0


def test_inner_records_on_another_heap_are_not_paired():
    t = 1_000 * US
    events = indexed(
        [alloc(0, 1, H, A, 8), alloc(t, 1, 0xB0, B, 16), free(t + 1, 1, 0xB0, A), realloc(t + 2, 1, H, B, A, 16, 8)]
    )
    ra, seen = replay(events)
    assert ra.counters.paired_inner == 0
    assert state_blocks(ra.state) == {(1, H): {B: 16}, (1, 0xB0): {B: 16}}


def test_an_incomplete_run_is_released_once_the_pair_window_has_passed():
    # thread 1: Alloc(B) then its ReAlloc(A -> B), but no Free(A): the run
    # never completes and thread 1 goes quiet; thread 2 keeps going
    t = 1_000 * US
    events = [alloc(0, 1, H, A, 8), alloc(t, 1, H, B, 16), realloc(t + 1, 1, H, B, A, 16, 8)]
    events += [alloc(t + k * 200 * US, 1, H, 0x9000 + 16 * k, 8, tid=2) for k in range(1, 30)]
    rp = Replay(ReplayOptions(reorder_window_ns=100 * US))
    out = list(rp.events(indexed(events)))
    assert sorted(ev.time for ev in out) == sorted(ev.time for ev in events)
    assert rp.counters.paired_inner == 0
    # held back, but released once the pair window has passed, not at the end
    newest = 0
    for ev in out:
        assert newest - ev.time <= rp.options.pair_window_ns
        newest = max(newest, ev.time)
    assert [ev.time for ev in out].index(t + 1) < 10


def test_inner_records_on_another_thread_are_not_paired():
    events = indexed(
        [alloc(0, 1, H, A, 8), alloc(10 * US, 1, H, B, 16, tid=2), realloc(11 * US, 1, H, B, A, 16, tid=1)]
    )
    ra, seen = replay(events)
    assert ra.counters.paired_inner == 0
    assert "overlap" in [a.kind for a in seen]


def test_inner_records_outside_the_pair_window_are_not_paired():
    t = 10 * US
    events = indexed(
        [alloc(0, 1, H, A, 8), alloc(t, 1, H, B, 16), free(t + 1, 1, H, A), realloc(t + 2_000 * US, 1, H, B, A, 16)]
    )
    ra, seen = replay(events)
    assert ra.counters.paired_inner == 0
    assert [a.kind for a in seen] == ["unknown-heap", "double-free", "realloc-unknown-old", "overlap"]
    ra, seen = replay(events, pair_window_ns=5_000 * US)
    assert ra.counters.paired_inner == 2
    assert [a.kind for a in seen] == ["unknown-heap"]


def test_a_lone_inner_record_is_not_paired():
    # thread 2 allocates B, thread 1 moves it to C, thread 2 moves A onto B:
    # thread 2's Alloc(B) sits right before its ReAlloc(A -> B), but is real
    events = indexed(
        [
            alloc(0, 1, H, A, 8, tid=2),
            alloc(10 * US, 1, H, B, 8, tid=2),
            realloc(11 * US, 1, H, C, B, 8, 8, tid=1),
            realloc(12 * US, 1, H, B, A, 16, 8, tid=2),
        ]
    )
    ra, seen = replay(events)
    assert [a.kind for a in seen] == ["unknown-heap"]
    assert state_blocks(ra.state) == {(1, H): {B: 16, C: 8}}
    assert ra.counters.paired_inner == 0


def test_chained_moves_pair_with_their_own_records():
    # A -> B -> C -> A on one thread, inner records before, after and around
    t = 1_000 * US
    events = indexed(
        [
            alloc(0, 1, H, A, 8),
            alloc(t, 1, H, B, 16), free(t + 1, 1, H, A), realloc(t + 2, 1, H, B, A, 16, 8),
            realloc(t + 3, 1, H, C, B, 32, 16), alloc(t + 4, 1, H, C, 32), free(t + 5, 1, H, B),
            alloc(t + 6, 1, H, A, 64), realloc(t + 7, 1, H, A, C, 64, 32), free(t + 8, 1, H, C),
        ]
    )  # fmt: skip
    ra, seen = replay(events)
    assert [a.kind for a in seen] == ["unknown-heap"]
    assert state_blocks(ra.state) == {(1, H): {A: 64}}
    assert ra.counters.paired_inner == 6
    assert ra.state.heap(1, H).blocks[A].moves == 3


def test_unknown_realloc_mode_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown realloc mode 'pair'; known: auto, standalone, paired"):
        ReplayOptions(realloc_mode="pair")
    with pytest.raises(UsageError):
        ReplayOptions(reorder_window_ns=-1)


@settings(max_examples=60, deadline=None)
@given(chaotic_ops, shape_draws)
def test_dense_chaotic_traces_lose_nothing(ops, draws):
    # anything goes, 2 us apart (and the same address on several heaps): the
    # pairing stage passes on every record but the inner ones it drops, once,
    # late by no more than the pair window
    events = indexed(paired_shape(build(ops, 2 * US), shape_stream(draws), step=US // 2))
    rp = Replay(ReplayOptions())
    out = list(rp.events(events))
    assert len(out) + rp.counters.paired_inner == len(events)
    assert len({ev.index for ev in out}) == len(out)
    assert {ev.index for ev in out} <= {ev.index for ev in events}
    dropped = [ev for ev in events if ev.index not in {o.index for o in out}]
    assert all(ev.kind in (ALLOC, FREE) for ev in dropped)
    newest = 0
    for ev in out:
        assert ev.time >= newest - rp.options.pair_window_ns
        newest = max(newest, ev.time)
    for ev in out:
        rp.state.apply(ev)
        rp.state._check()
