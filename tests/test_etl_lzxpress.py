"""The plain LZ77 decompressor against [MS-XCA]'s worked examples and a round trip."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heaplint.engine.readers.lzxpress import DecompressionError, decompress
from lzxpress_compress import compress
from etl_impl import etl_implementation  # noqa: F401  (each test runs with C and pure Python)

# [MS-XCA] section 3.1: 26 literals, one flag word (26 zero bits, then ones)
ALPHABET = b"abcdefghijklmnopqrstuvwxyz"
ALPHABET_COMPRESSED = bytes.fromhex("3f000000") + ALPHABET
# [MS-XCA] section 3.2: "abc" 100 times: 3 literals, then one match of length
# 297 at distance 3 whose length needs the nibble, byte and 16-bit escapes
ABC_COMPRESSED = bytes.fromhex("ffffff1f61626317000fff2601")


def test_spec_example_literals() -> None:
    assert decompress(ALPHABET_COMPRESSED) == ALPHABET
    assert decompress(ALPHABET_COMPRESSED, len(ALPHABET)) == ALPHABET


def test_spec_example_long_overlapping_match() -> None:
    assert decompress(ABC_COMPRESSED) == b"abc" * 100


def test_test_compressor_reproduces_the_spec_examples() -> None:
    # the writer's compressor is greedy, as the spec's examples are
    assert compress(ALPHABET) == ALPHABET_COMPRESSED
    assert compress(b"abc" * 100) == ABC_COMPRESSED


def test_shared_length_nibbles() -> None:
    # two long matches: the first takes the low nibble of a length byte, the second its high nibble
    data = b"x" * 20 + b"0123456789" + b"y" * 25 + b"0123456789"
    assert decompress(compress(data)) == data


@pytest.mark.parametrize(
    "bad",
    [
        bytes.fromhex("00000080") + b"\x08\x00",  # first token is a match: nothing to copy from
        bytes.fromhex("000000") ,  # a flag word cut short
        bytes.fromhex("00000040") + b"a" + b"\x07",  # a match token cut short
    ],
)
def test_malformed_input_raises(bad: bytes) -> None:
    with pytest.raises(DecompressionError):
        decompress(bad)


def test_short_output_is_an_error() -> None:
    with pytest.raises(DecompressionError):
        decompress(ALPHABET_COMPRESSED, 40)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=40), st.sampled_from([b"\0" * 300, b"ab" * 50, b"\xff" * 9000])), max_size=30))
def test_round_trip(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert decompress(compress(data), len(data)) == data
