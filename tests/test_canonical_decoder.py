"""The record decoder against a plain reference reading of the format spec,
over random records with valid and invalid values in every field."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heaplint.engine.events import KIND_BY_NAME, HeapEvent, Source, TraceInfo
from heaplint.engine.readers.canonical_format import BadRecord
from heaplint.engine.readers.canonical_records import RecordDecoder


class Reject(Exception):
    """The reference says the record is invalid (``field`` is the culprit)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def ref_uint(rec: dict, field: str, required: bool):
    v = rec.get(field)
    if v is None:
        if required:
            raise Reject(field)
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise Reject(field)
    return v


def ref_addr(rec: dict, field: str, required: bool = True):
    v = rec.get(field)
    if v is None:
        if required:
            raise Reject(field)
        return None
    if isinstance(v, str) and v.lower().startswith("0x"):
        try:
            return int(v[2:], 16) if v[2:] and "-" not in v and "+" not in v else _raise(field)
        except ValueError:
            raise Reject(field) from None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise Reject(field)
    return v


def _raise(field: str):
    raise Reject(field)


def ref_decode(rec: dict, mult: int) -> HeapEvent:
    """The spec, read literally and slowly."""
    kind = rec.get("kind")
    if not isinstance(kind, str) or kind not in KIND_BY_NAME:
        raise Reject("kind")
    code = int(KIND_BY_NAME[kind])
    t = rec.get("time")
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise Reject("time")
    t = t * mult
    if isinstance(t, float):
        if not math.isfinite(t):  # also a finite time that overflows in ns
            raise Reject("time")
        t = round(t)
    pid = ref_uint(rec, "pid", True)
    tid = ref_uint(rec, "tid", False) or 0
    fields: dict = {}
    if kind in ("alloc", "realloc", "free"):
        fields["heap"] = ref_addr(rec, "heap")
        fields["address"] = ref_addr(rec, "new_address" if kind == "realloc" else "address")
        src = rec.get("source")
        if src is None:
            fields["source"] = 0
        elif isinstance(src, str) and src in Source.__members__:
            fields["source"] = int(Source[src])
        elif type(src) is int and 0 <= src <= 6:
            fields["source"] = src
        else:
            raise Reject("source")
        if kind != "free":
            fields["stack"] = ref_uint(rec, "stack", False)
            if kind == "alloc":
                fields["size"] = ref_uint(rec, "size", True)
            else:
                fields["size"] = ref_uint(rec, "new_size", True)
                fields["old_address"] = ref_addr(rec, "old_address")
                fields["old_size"] = ref_uint(rec, "old_size", False)
    elif kind in ("create", "destroy"):
        fields["heap"] = ref_addr(rec, "heap")
        if kind == "create":
            fields["flags"] = ref_addr(rec, "flags", required=False) or 0
    else:
        image = rec.get("image")
        if image is not None and not isinstance(image, str):
            raise Reject("image")
        fields["image"] = image or None
    return HeapEvent(code, t, pid, tid, **fields)


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=-1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "0x", "0xzz", "0x-1", "-0x1", "16", "abc", "LFH", "lfh", "UNKNOWN", "0X1F", "0x1f"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
MISSING = object()

uints = st.integers(min_value=0, max_value=2**64)
addrs = uints | uints.map(hex)
GOOD = {
    "time": st.integers(min_value=-(2**40), max_value=2**50) | st.floats(-1e12, 1e12),
    "pid": uints,
    "tid": uints,
    "heap": addrs,
    "address": addrs,
    "new_address": addrs,
    "old_address": addrs,
    "size": uints,
    "new_size": uints,
    "old_size": uints,
    "source": st.integers(min_value=0, max_value=6) | st.sampled_from([s.name for s in Source]),
    "stack": uints,
    "flags": addrs,
    "image": st.text(max_size=10),
}


@st.composite
def records(draw) -> dict:
    """Mostly valid records with a few fields spoiled (junk or left out), so
    that every check meets both good and bad values."""
    kind = draw(st.sampled_from([*KIND_BY_NAME, "bogus"]) | JUNK) if draw(st.integers(0, 9)) == 0 else None
    rec = {"kind": kind if kind is not None else draw(st.sampled_from(list(KIND_BY_NAME)))}
    spoiled = draw(st.sets(st.sampled_from(list(GOOD)), max_size=2))
    for name, good in GOOD.items():
        if name in spoiled:
            value = draw(st.just(MISSING) | JUNK)
        else:
            value = draw(good) if draw(st.integers(0, 5)) else MISSING  # optional fields come and go
        if value is not MISSING:
            rec[name] = value
    if draw(st.booleans()):
        rec["unknown_extra"] = draw(JUNK)
    return rec


def check(rec: dict, mult: int) -> None:
    """The decoder accepts what the reference accepts, with the same event, and
    rejects the rest naming the same field."""
    decoder = RecordDecoder(TraceInfo(path="x", format="jsonl"), {}, mult, text=False)
    try:
        expected = ref_decode(rec, mult)
    except Reject as reject:
        with pytest.raises(BadRecord) as err:
            decoder.decode(rec, 3, 9)
        # the decoder checks fields in the reference's order, so it names the same culprit
        assert (reject.field if reject.field == "kind" else f"'{reject.field}'") in str(err.value)
        return
    assert decoder.decode(rec, 3, 9) == expected._replace(index=3, line=9)
    # and again, now that handle strings are cached
    assert decoder.decode(rec, 4, 10) == expected._replace(index=4, line=10)


@settings(max_examples=300, deadline=None)
@given(rec=records(), mult=st.sampled_from([1, 100, 1000]))
def test_decoder_agrees_with_the_reference(rec: dict, mult: int) -> None:
    check(rec, mult)


COMMON = {"time": 5, "pid": 4, "tid": 3}
FULL = {
    "create": {**COMMON, "heap": "0x10", "flags": 2},
    "alloc": {**COMMON, "heap": "0x10", "address": "0x20", "size": 8, "source": "LFH", "stack": 1},
    "realloc": {
        **COMMON, "heap": "0x10", "new_address": "0x30", "old_address": "0x20", "new_size": 9, "old_size": 8,
        "source": 4, "stack": 2,
    },
    "free": {**COMMON, "heap": "0x10", "address": "0x30", "source": "MAINPATH"},
    "destroy": {**COMMON, "heap": 16},
    "process_start": {**COMMON, "image": "a.exe"},
    "process_end": {**COMMON, "image": "a.exe"},
}  # fmt: skip
PAIRS = [(kind, field) for kind, rec in FULL.items() for field in rec]


@pytest.mark.parametrize(("kind", "field"), PAIRS)
@settings(max_examples=20, deadline=None)
@given(value=st.just(MISSING) | JUNK)
def test_each_field_of_each_kind_rejects_junk(kind: str, field: str, value) -> None:
    rec = {"kind": kind, **FULL[kind]}
    if value is MISSING:
        del rec[field]
    else:
        rec[field] = value
    check(rec, 1000)


def test_heap_handle_cache_stays_correct_past_its_bound() -> None:
    decoder = RecordDecoder(TraceInfo(path="x", format="jsonl"), {}, 1, text=False)
    for round_ in range(2):
        for i in range(5000):
            rec = {"kind": "free", "time": 0, "pid": 1, "heap": hex(i * 16), "address": 1}
            assert decoder.decode(rec, 0, 0).heap == i * 16, round_
    assert len(decoder._heaps) <= 4096
    with pytest.raises(BadRecord, match="field 'heap'"):
        decoder.decode({"kind": "free", "time": 0, "pid": 1, "heap": "0xzz", "address": 1}, 0, 0)
