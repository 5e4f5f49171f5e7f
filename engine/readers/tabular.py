"""Helpers shared by the readers of tabular text exports (xperf dumper, WPA CSV).

Both formats name their columns in header rows whose exact spelling varies
between tool versions and user profiles, so columns are looked up by a
*normalised* label (lower case, letters and digits only) against a documented
list of aliases.  Everything here is pure and cheap: these functions run once
per row.
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Sequence

from heaplint.engine.events import SOURCE_BY_NAME, Source, StackTable

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def normalise_label(label: str) -> str:
    """``"Process Name ( PID)"`` -> ``"processnamepid"``; ``"Heap/Alloc"`` -> ``"heapalloc"``."""
    return _NON_ALNUM.sub("", label.lower())


@dataclass(frozen=True, slots=True)
class Column:
    """A column a reader needs: ``key`` (internal name), ``what`` (for error
    messages) and ``aliases`` (normalised labels, most specific first)."""

    key: str
    what: str
    aliases: tuple[str, ...]
    required: bool = True


def find_columns(labels: Sequence[str], columns: Sequence[Column]) -> tuple[dict[str, int], list[Column]]:
    """Map each wanted column to its index in ``labels``.

    Returns ``(found, missing)``: ``found`` maps ``Column.key`` to the index of
    the first label matching one of its aliases (aliases are tried in order, so
    ``NewAddress`` wins over ``Address`` when both exist); ``missing`` lists the
    required columns that matched nothing.
    """
    index: dict[str, int] = {}
    for i, label in enumerate(labels):
        index.setdefault(normalise_label(label), i)
    found: dict[str, int] = {}
    missing: list[Column] = []
    taken: set[int] = set()
    for col in columns:
        for alias in col.aliases:
            i = index.get(alias)
            if i is not None and i not in taken:
                found[col.key] = i
                taken.add(i)
                break
        else:
            if col.required:
                missing.append(col)
    return found, missing


def describe_missing(missing: Sequence[Column], labels: Sequence[str], what: str) -> str:
    """One error message naming the missing columns, their accepted labels and
    the columns that were there."""
    parts = [f"{c.what} (accepted labels, normalised: {', '.join(c.aliases)})" for c in missing]
    seen = ", ".join(f"'{label}'" for label in labels) or "none"
    noun = "column" if len(missing) == 1 else "columns"
    return f"{what}: no {noun} for {'; '.join(parts)}; columns seen: {seen}"


# --- numbers ---------------------------------------------------------------

#: characters used as digit-group separators in exported numbers
_GROUPING = str.maketrans("", "", ",_ '\u00a0\u202f")


def parse_count(text: str) -> int:
    """A non-negative integer: decimal (``1,024`` grouping allowed) or ``0x`` hex."""
    if text.isdigit():  # the common case, without any copying
        return int(text)
    t = text.strip().strip('"').translate(_GROUPING)
    if t[:2] in ("0x", "0X"):
        return int(t[2:], 16)
    value = int(t)
    if value < 0:
        raise ValueError(f"negative value '{text.strip()}'")
    return value


def parse_address(text: str) -> int:
    """An address or handle: ``0x`` hex, bare hex when it has hex letters, else decimal."""
    if text[:2] in ("0x", "0X"):
        try:
            return int(text, 16)  # the common case; int() accepts the 0x prefix
        except ValueError:
            pass
    t = text.strip().strip('"').translate(_GROUPING)
    if t[:2] in ("0x", "0X"):
        return int(t[2:], 16)
    if t.isdigit():
        return int(t)
    return int(t, 16)


_POW10 = [10**i for i in range(19)]


def parse_decimal_ns(text: str, scale_digits: int) -> int:
    """A decimal number of some unit as integer ns, without float rounding.

    ``scale_digits`` is log10(ns per unit): 9 for seconds, 3 for microseconds.
    ``"1,234.5678"`` with scale 9 -> 1_234_567_800_000.  Negative values are
    accepted (events logged just before the trace origin).
    """
    if text.isdigit():  # whole units: the common case for microsecond timestamps
        return int(text) * _POW10[scale_digits]
    whole, _, frac = text.partition(".")
    if whole.isdigit() and frac.isdigit() and len(frac) <= scale_digits:  # plain "1.234567"
        return int(whole) * _POW10[scale_digits] + int(frac) * _POW10[scale_digits - len(frac)]
    t = text.strip().strip('"').translate(_GROUPING)
    negative = t.startswith("-")
    if negative or t.startswith("+"):
        t = t[1:]
    if t in ("", "."):
        raise ValueError(f"not a number: '{text.strip()}'")
    whole, _, frac = t.partition(".")
    if not whole:
        whole = "0"
    if not (whole.isdigit() and (not frac or frac.isdigit())):
        raise ValueError(f"not a number: '{text.strip()}'")
    frac = (frac + "0" * scale_digits)[:scale_digits]
    value = int(whole) * 10**scale_digits + (int(frac) if frac else 0)
    return -value if negative else value


_PROCESS = re.compile(r"^(.*?)\s*\(\s*(-?\d+)\s*\)\s*$")
_CACHE_MAX = 4096
_process_cache: dict[str, tuple[str | None, int]] = {}


def parse_process(text: str) -> tuple[str | None, int] | None:
    """``"My App.exe ( 1234)"`` -> ``("My App.exe", 1234)``; ``None`` when no pid.

    The name may contain spaces and may be quoted; the pid is the number in the
    last pair of parentheses.
    """
    hit = _process_cache.get(text)
    if hit is not None:
        return hit
    m = _PROCESS.match(text.strip())
    if m is None:
        return None
    name = m.group(1).strip().strip('"').strip() or None
    parsed = (name, int(m.group(2)))
    if len(_process_cache) < _CACHE_MAX:  # a trace names few processes; bound it anyway
        _process_cache[text] = parsed
    return parsed


_SOURCE_ALIASES: dict[str, int] = {
    **{normalise_label(name): int(src) for name, src in SOURCE_BY_NAME.items()},
    "lowfrag": int(Source.LFH),
    "lowfragmentationheap": int(Source.LFH),
    "main": int(Source.MAINPATH),
    "slow": int(Source.SLOWPATH),
    "segmentheap": int(Source.SEGMENT),
    "": int(Source.UNKNOWN),
}


_MAX_SOURCE = int(max(Source))
_source_cache: dict[str, int] = {}


def parse_source(text: str) -> int:
    """The ETW ``Source`` value from a number (``3``, ``0x3``) or a name
    (``MainPath``, ``LFH``, ``Low Fragmentation Heap``...).  ValueError otherwise."""
    value = _source_cache.get(text)
    if value is not None:
        return value
    t = text.strip().strip('"')
    if t[:1].isdigit():
        value = parse_count(t)
        if value > _MAX_SOURCE:
            raise ValueError(f"unknown heap source value {value}")
    else:
        key = normalise_label(t)
        if key.startswith("memoryfrom"):  # MEMORY_FROM_LOWFRAG and friends
            key = key[len("memoryfrom") :]
        try:
            value = _SOURCE_ALIASES[key]
        except KeyError:
            raise ValueError(f"unknown heap source '{t}'") from None
    if len(_source_cache) < _CACHE_MAX:
        _source_cache[text] = value
    return value


# --- stacks ----------------------------------------------------------------


class StackInterner:
    """Gives each distinct frame tuple one id in a reader's ``StackTable``.

    Memory grows with the number of *distinct* stacks, never with the number
    of events that carry them."""

    def __init__(self, table: StackTable) -> None:
        self.table = table
        self._ids: dict[tuple[str, ...], int] = {}

    def intern(self, frames: Sequence[str]) -> int | None:
        """The id of ``frames`` (innermost first); ``None`` for an empty stack."""
        if not frames:
            return None
        key = tuple(frames)
        sid = self._ids.get(key)
        if sid is None:
            sid = self._ids[key] = len(self._ids) + 1
            self.table[sid] = key
        return sid


# --- text decoding ---------------------------------------------------------


def encoding_of(head: bytes) -> str:
    """The text encoding announced by a byte-order mark (PowerShell's ``>``
    writes UTF-16); UTF-8 otherwise."""
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    return "utf-8"


def decode_head(head: bytes) -> str:
    """The sniffing window as text (a split multi-byte character at the end is dropped)."""
    enc = encoding_of(head)
    if enc == "utf-16" and len(head) % 2:
        head = head[:-1]
    return head.decode(enc, errors="replace")


def text_stream(stream: BinaryIO, newline: str | None = None) -> io.TextIOWrapper:
    """A text view of a reader's binary stream, decoded per its byte-order mark.

    Undecodable bytes become U+FFFD instead of aborting the read: a stray byte
    in a process name must not lose a whole trace."""
    peek = getattr(stream, "peek", None)
    head = peek(4)[:4] if peek is not None else b""
    return io.TextIOWrapper(stream, encoding=encoding_of(head), errors="replace", newline=newline)  # type: ignore[arg-type]


#: the longest row a text export may have; no real one comes near (the
#: canonical reader's cap is the same size in bytes)
MAX_ROW_CHARS = 1 << 20


def bounded_lines(text: io.TextIOBase, limit: int = MAX_ROW_CHARS) -> Iterator[str | None]:
    """The lines of ``text`` as iterating over it gives them, except that a
    line of more than ``limit`` characters comes out as None: it is read in
    pieces of ``limit`` and dropped, so that one huge line (a corrupt or
    binary file) never has to fit in memory."""
    readline = text.readline
    while True:
        line = readline(limit + 1)
        if not line:
            return
        if len(line) > limit:
            while line and not line.endswith("\n"):
                line = readline(limit)
            yield None
        else:
            yield line


def split_fields(line: str) -> list[str]:
    """Split one comma-separated row and strip the padding around each field.

    Double-quoted fields may contain commas (command lines, file names); the
    quotes are kept off the value.  Rows without quotes take the fast path."""
    if '"' not in line:
        return [f.strip() for f in line.split(",")]
    fields: list[str] = []
    buf: list[str] = []
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            fields.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
    fields.append("".join(buf).strip())
    return fields
