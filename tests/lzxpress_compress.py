"""A greedy plain LZ77 compressor ([MS-XCA] section 2.3), for tests and benchmarks.

heaplint only ever decompresses; this exists so that tests can build
compressed .etl buffers.  Greedy matching over a 3-byte hash chain of depth 1:
small and obviously correct rather than a good ratio.
"""

from __future__ import annotations

import struct

_MAX_DISTANCE = 8192


def compress(data: bytes) -> bytes:
    """Compress ``data``; ``heaplint.engine.readers.lzxpress.decompress`` inverts it."""
    out = bytearray()
    n = len(data)
    flags = 0
    count = 0
    flag_at = len(out)
    out += b"\0\0\0\0"
    half_at = -1  # output position of a length byte whose high nibble is free
    last: dict[bytes, int] = {}
    i = 0

    def push_flag(bit: int) -> None:
        nonlocal flags, count
        flags = (flags << 1) | bit
        count += 1

    def end_token() -> None:
        # after the 32nd token's bytes: store its flag word, reserve the next
        nonlocal flags, count, flag_at
        if count == 32:
            struct.pack_into("<I", out, flag_at, flags)
            flags = 0
            count = 0
            flag_at = len(out)
            out.extend(b"\0\0\0\0")

    while i < n:
        best_len = 0
        best_dist = 0
        if i + 3 <= n:
            key = data[i : i + 3]
            j = last.get(key)
            last[key] = i
            if j is not None and i - j <= _MAX_DISTANCE:
                length = 3
                limit = n - i
                while length < limit and data[j + length] == data[i + length]:
                    length += 1
                best_len, best_dist = length, i - j
        if best_len < 3:
            push_flag(0)
            out.append(data[i])
            end_token()
            i += 1
            continue
        push_flag(1)
        length = best_len - 3
        if length < 7:
            out += struct.pack("<H", (best_dist - 1) << 3 | length)
        else:
            out += struct.pack("<H", (best_dist - 1) << 3 | 7)
            rest = length - 7
            nibble = min(rest, 15)
            if half_at < 0:
                half_at = len(out)
                out.append(nibble)
            else:
                out[half_at] |= nibble << 4
                half_at = -1
            if rest >= 15:
                rest -= 15
                if rest < 255:
                    out.append(rest)
                else:
                    out.append(255)
                    rest += 15 + 7
                    if rest < 1 << 16:
                        out += struct.pack("<H", rest)
                    else:
                        out += struct.pack("<HI", 0, rest)
        end_token()
        for k in range(i + 1, min(i + best_len, n - 2)):
            last[data[k : k + 3]] = k
        i += best_len
    # pad the last flag word with ones: a match flag with no input ends the stream
    flags = (flags << (32 - count)) | ((1 << (32 - count)) - 1)
    struct.pack_into("<I", out, flag_at, flags)
    return bytes(out)
