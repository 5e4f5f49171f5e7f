"""Plain LZ77 ("LZXpress") decompression, as specified in [MS-XCA] sections 2.3/2.4.

Compressed .etl buffers (buffer flag 0x40, written by ``xperf -compress`` and by
WPR) hold their records compressed with this algorithm.  The format in brief:

* a little-endian 32-bit flag word precedes every 32 tokens; its bits, read
  from the most significant down, say whether the next token is a literal byte
  (0) or a match (1);
* a match is a 16-bit little-endian word: the low 3 bits are the length - 3,
  the high 13 bits the distance - 1.  A length of 7 continues in a 4-bit
  nibble (two matches share one byte: the first uses its low nibble, the next
  its high nibble), then in a byte, then in a 16-bit or 32-bit word;
* the stream ends at a match flag with no input left (the compressor pads the
  last flag word with ones).

The implementation is pure Python and built for speed, not elegance: runs of
literal flags are copied with one slice (their length comes from the flag
word's bit length), non-overlapping matches are one slice copy, and
overlapping matches (distance < length, i.e. a repeated pattern) are built by
repetition.  Everything the loop touches is a local variable.
"""

from __future__ import annotations

import struct
import sys

from heaplint.engine.readers import etl_native

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")


class DecompressionError(ValueError):
    """The compressed data is malformed (a match reaches before the start of
    the output, or the input ends inside a token)."""


def decompress(src: bytes | bytearray | memoryview, out_size: int | None = None) -> bytes:
    """Decompress plain LZ77 data ``src``, in C when the accelerator is in use
    (see etl_native.py), else with :func:`decompress_python`; both give the
    same bytes or raise :class:`DecompressionError`."""
    native = etl_native.NATIVE
    if native is None:
        return decompress_python(src, out_size)
    try:
        out = native.decompress(src, -1 if out_size is None else out_size)
    except ValueError as err:
        raise DecompressionError(str(err)) from None
    if out_size is not None and len(out) < out_size:
        raise DecompressionError(f"decompressed {len(out)} bytes, expected {out_size}")
    return out


def decompress_python(src: bytes | bytearray | memoryview, out_size: int | None = None) -> bytes:
    """Decompress plain LZ77 data ``src`` (the pure-Python reference).

    ``out_size``, when given, is the expected decompressed size: decoding stops
    as soon as it is reached (a match crossing it is cut there; what follows is
    not read), and a shorter result raises :class:`DecompressionError`.
    Runs in O(len(output)) with per-token Python work only.
    """
    try:
        out = _decompress(bytes(src), out_size if out_size is not None else sys.maxsize)
    except (IndexError, struct.error):
        raise DecompressionError("compressed data ends inside a token") from None
    if out_size is not None:
        if len(out) < out_size:
            raise DecompressionError(f"decompressed {len(out)} bytes, expected {out_size}")
        if len(out) > out_size:
            del out[out_size:]
    return bytes(out)


def _decompress(src: bytes, limit: int) -> bytearray:
    out = bytearray()
    n = len(src)
    ip = 0
    half = -1  # input position of a length byte whose high nibble is still unused
    unpack_u32 = _U32.unpack_from
    unpack_u16 = _U16.unpack_from
    while ip < n:
        if limit <= len(out):
            break
        if ip + 4 > n:
            raise DecompressionError("compressed data ends inside a flag word")
        rem = unpack_u32(src, ip)[0]
        ip += 4
        bits = 32
        while bits:
            # leading zero flags are a run of literal bytes: copy them at once
            run = bits - rem.bit_length()
            if run:
                if ip + run >= n:
                    out += src[ip:n]
                    return out
                out += src[ip : ip + run]
                ip += run
                if limit <= len(out):
                    return out
                bits -= run
                if not bits:
                    break
            bits -= 1
            rem &= (1 << bits) - 1
            if ip >= n:
                return out  # a match flag with no input left ends the stream
            token = unpack_u16(src, ip)[0]
            ip += 2
            length = token & 7
            if length == 7:
                if half < 0:
                    length = src[ip] & 15
                    half = ip
                    ip += 1
                else:
                    length = src[half] >> 4
                    half = -1
                if length == 15:
                    length = src[ip]
                    ip += 1
                    if length == 255:
                        length = unpack_u16(src, ip)[0]
                        ip += 2
                        if length == 0:
                            length = unpack_u32(src, ip)[0]
                            ip += 4
                        if length < 22:
                            raise DecompressionError("match length below its encoding's minimum")
                        length -= 22
                    length += 15
                length += 7
            length += 3
            distance = (token >> 3) + 1
            start = len(out) - distance
            if start < 0:
                raise DecompressionError(f"match reaches {-start} bytes before the start of the output")
            if length > limit - len(out):
                length = limit - len(out)  # cut at the expected size (a hostile length can be 4 GiB)
            if distance >= length:
                out += out[start : start + length]
            else:
                pattern = out[start:]
                reps, extra = divmod(length, distance)
                out += pattern * reps + pattern[:extra]
            if limit <= len(out):
                return out
    return out


__all__ = ["DecompressionError", "decompress", "decompress_python"]
