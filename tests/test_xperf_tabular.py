"""The value parsers and column finder shared by the text-export readers,
checked against simple reference models."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heaplint.engine.events import Source
from heaplint.engine.readers.spill import ExternalSorter
from heaplint.engine.readers.tabular import (
    Column,
    find_columns,
    normalise_label,
    parse_address,
    parse_count,
    parse_decimal_ns,
    parse_process,
    parse_source,
    split_fields,
)


@given(st.integers(-(10**15), 10**15), st.integers(0, 9), st.sampled_from([3, 9]), st.booleans())
def test_decimal_ns_matches_exact_decimal_arithmetic(units, frac_digits, scale, grouped):
    text = f"{abs(units) // 10**frac_digits:,}" if grouped else str(abs(units) // 10**frac_digits)
    if frac_digits:
        text += "." + f"{abs(units) % 10**frac_digits:0{frac_digits}d}"
    if units < 0:
        text = "-" + text
    expected = Decimal(text.replace(",", "")) * (10**scale)
    assert parse_decimal_ns(text, scale) == int(expected)  # truncation only below 1 ns


@pytest.mark.parametrize("bad", ["", ".", "-", "1.2.3", "abc", "0x10", "1e5", "--1"])
def test_decimal_ns_rejects_non_numbers(bad):
    with pytest.raises(ValueError):
        parse_decimal_ns(bad, 9)


@given(st.integers(0, 2**64 - 1))
def test_address_forms(value):
    assert parse_address(hex(value)) == value
    assert parse_address(f"0x{value:016X}") == value
    assert parse_address(str(value)) == value  # decimal
    bare = f"{value:x}"
    # bare hex is recognised by its letters; an all-digit bare value reads as decimal (documented)
    assert parse_address(f"  {bare}  ") == (int(bare) if bare.isdigit() else value)


def test_address_rules_are_explicit():
    assert parse_address("0x10") == 16
    assert parse_address("10") == 10  # all digits: decimal
    assert parse_address("1a") == 26  # has a hex letter: hex
    assert parse_address("00007ffb0000abcd") == 0x7FFB0000ABCD
    with pytest.raises(ValueError):
        parse_address("0xzz")


@given(st.integers(0, 2**63))
def test_count_forms(value):
    assert parse_count(str(value)) == value
    assert parse_count(f"{value:,}") == value
    assert parse_count(f'"{value:,}"') == value
    assert parse_count(hex(value)) == value


def test_count_rejects_negative_and_garbage():
    for bad in ["-1", "", "1.5", "ten"]:
        with pytest.raises(ValueError):
            parse_count(bad)


@given(
    st.text(alphabet=st.characters(blacklist_characters="()\"\r\n", blacklist_categories=("Cs",)), min_size=1, max_size=30)
    .map(str.strip)
    .filter(bool),
    st.integers(-1, 2**32),
    st.integers(0, 6),
)
def test_process_name_with_anything_but_parentheses(name, pid, pad):
    assert parse_process(f"{name} ({' ' * pad}{pid})") == (name, pid)
    assert parse_process(f'"{name}" ( {pid})') == (name, pid)


def test_process_without_pid_is_none():
    assert parse_process("Idle") is None
    assert parse_process("app.exe (x)") is None
    assert parse_process("Idle (   0)") == ("Idle", 0)


@pytest.mark.parametrize(
    ("text", "value"),
    [("3", 3), ("0x2", 2), ("LFH", 2), ("Low Fragmentation Heap", 2), ("MainPath", 3), ("slow path", 4),
     ("MEMORY_FROM_LOOKASIDE", 1), ("Segment Heap", 6), ("", 0), ("Invalid", 5)],
)
def test_source_names_and_numbers(text, value):
    assert parse_source(text) == value == int(Source(value))


@pytest.mark.parametrize("bad", ["7", "Turbo", "-1"])
def test_source_rejects_unknown(bad):
    with pytest.raises(ValueError):
        parse_source(bad)


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters='"\r\n', blacklist_categories=("Cs",)), max_size=12), min_size=1, max_size=8))
def test_split_fields_recovers_the_cells(cells):
    # xperf quotes fields holding commas and pads the others with spaces
    line = ",  ".join(f'"{c}"' if "," in c else f"  {c}" for c in cells)
    assert split_fields(line) == [c.strip() for c in cells]


def test_normalise_label_examples():
    assert normalise_label("Process Name ( PID)") == "processnamepid"
    assert normalise_label("Heap/Alloc") == normalise_label("Heap_Alloc") == normalise_label("HeapAlloc") == "heapalloc"
    assert normalise_label("No.") == "no"
    assert normalise_label("Image!Function") == "imagefunction"


def test_find_columns_prefers_alias_order_and_reports_missing():
    cols = (Column("new", "new", ("newaddress", "address")), Column("old", "old", ("oldaddress",)),
            Column("size", "size", ("size",)), Column("opt", "opt", ("nothing",), required=False))
    found, missing = find_columns(["Address", "Old Address", "New Address"], cols)
    assert found == {"new": 2, "old": 1}
    assert [c.key for c in missing] == ["size"]
    found, _ = find_columns(["Address", "OldAddress"], cols)
    assert found["new"] == 0  # falls back to the later alias


@given(st.lists(st.tuples(st.integers(-5, 5), st.integers(0, 3), st.text(max_size=3))), st.integers(1, 7))
def test_external_sorter_sorts_and_bounds_memory(items, chunk):
    sorter = ExternalSorter(chunk)
    for it in items:
        sorter.add(it)
    assert sorter.max_buffered <= chunk
    assert sorter.runs == len(items) // chunk
    assert list(sorter.sorted()) == sorted(items)
