"""BlockMap (compact records, fused place/take) against a plain dict model.

Random operations in a tiny address space, so that neighbours, overlaps and
sublist splits and merges (a small load factor) all happen; after each one
the map must equal the model, sortedcontainers' own invariants must hold, and
range questions must agree with linear scans.
"""

from __future__ import annotations

import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from heaplint.engine.blocks import Block, BlockMap, moved, pack, size_of, unpack

ADDRS = st.integers(0, 400)
SIZES = st.integers(0, 40)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("place"), ADDRS, SIZES),
        st.tuples(st.just("take"), ADDRS),
        st.tuples(st.just("setitem"), ADDRS, SIZES),
        st.tuples(st.just("pop"), ADDRS),
        st.tuples(st.just("peek"), st.integers(-3, 3)),
    ),
    max_size=200,
)


def span(size: int) -> int:
    return size or 1


def overlaps(model: dict[int, int], address: int, end: int) -> bool:
    return any(a < end and address < a + span(s) for a, s in model.items())


def check(m: BlockMap, model: dict[int, int]) -> None:
    m._check()
    assert list(m) == sorted(model)
    assert {a: b.size for a, b in m.items()} == model
    assert len(m) == len(model)


@settings(max_examples=200, deadline=None)
@given(ops, st.sampled_from([4, 8, 1000]))
def test_blockmap_matches_a_dict(operations, load):
    m = BlockMap()
    m._list._reset(load)  # small sublists: splits and merges happen
    model: dict[int, int] = {}
    for op in operations:
        if op[0] == "place":
            _, a, size = op
            ok = m.place(a, a + span(size), pack(size, 7, 3, None, 2))
            assert ok == (not overlaps(model, a, a + span(size)))
            if ok:
                model[a] = size
        elif op[0] == "take":
            rec = m.take(op[1])
            assert (None if rec is None else size_of(rec)) == model.pop(op[1], None)
        elif op[0] == "setitem":  # the public SortedDict interface still works
            _, a, size = op
            if not overlaps({k: v for k, v in model.items() if k != a}, a, a + span(size)):
                m[a] = Block(size, 1, 2, 5, 1)
                model[a] = size
        elif op[0] == "pop":
            got = m.pop(op[1], None)
            assert (None if got is None else got.size) == model.pop(op[1], None)
        elif model:  # a positional look-up builds the SortedList's index
            addr, block = m.peekitem(op[1] % len(model))
            assert block.size == model[addr]
        check(m, model)
        for probe in range(0, 440, 7):
            want = [a for a, s in model.items() if a <= probe < a + span(s)]
            got = m.containing(probe)
            assert (got[0] if got else None) == (want[0] if want else None)
            below = [a for a in model if a <= probe]
            assert m.floor(probe) == (max(below) if below else None)
            assert m.starting_in(probe, probe + 30) == sorted(a for a in model if probe <= a < probe + 30)


values = st.integers(-(1 << 70), 1 << 70)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 1 << 45), values, values, st.one_of(st.none(), values), st.integers(-2, 9), st.integers(0, 1 << 20),
    st.integers(0, 1 << 70),
)  # fmt: skip
def test_records_round_trip(size, time, index, stack, source, moves, copied):
    block = Block(size, time, index, stack, source, moves, copied)
    rec = pack(*block)
    assert unpack(rec) == block
    assert size_of(rec) == size
    again = moved(rec, 5, 6, 7, None, 1, True)
    assert unpack(again) == Block(5, 6, 7, None, 1, moves + 1, copied + size)
    assert unpack(moved(rec, 5, 6, 7, 8, 1, False)) == Block(5, 6, 7, 8, 1, moves, copied)


def test_common_records_are_compact():
    rec = pack(48, 123_456_789_012, 1_234_567, None, 2)
    assert isinstance(rec, bytes) and sys.getsizeof(rec) <= 64
    assert isinstance(pack(48, 1, 2, 3, 2, 1, 48), bytes)
    assert isinstance(pack(48, -1 << 64, 2, 3, 2), Block)  # out of range: kept as a Block
