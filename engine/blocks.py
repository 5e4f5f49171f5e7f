"""Live blocks of one heap: compact block records in a sorted map.

A heap's live blocks are a :class:`BlockMap`, a
:class:`sortedcontainers.SortedDict` keyed by address: exact-address look-ups
are plain dict look-ups (O(1)); range questions (overlap, interior pointers)
bisect the sorted key list (O(log n)).

**Compact records.**  The map does not keep a :class:`Block` tuple per block
but the bytes of its fields (:func:`pack`): one 64-byte object instead of
about 224 bytes for a tuple and the int objects it holds.  A block whose
fields do not fit the layout (a negative time, a huge stack id, ...) is kept
as a :class:`Block`.  Every public accessor of the map (``[]``, ``get``,
``items``, ``values``, ``peekitem``, ``pop``) returns :class:`Block` values;
the replay's own hot paths read the raw records with the ``dict`` methods and
:func:`size_of`.

**Fused updates.**  :meth:`BlockMap.place` checks a new block against its two
neighbours and inserts it, and :meth:`BlockMap.take` removes one, each with
one bisection of the key lists (sortedcontainers' own ``add``/``remove`` take
three to four Python calls and bisect again).  They edit the SortedList's
internal lists the way its ``add``/``remove`` do and defer to its own
``_expand``/``_delete`` whenever a sublist must split or merge or a positional
index exists, so :meth:`sortedcontainers.SortedList._check` holds after every
call (the property tests check it).
"""

from __future__ import annotations

import struct
from bisect import bisect_left as _bisect_left
from typing import Any, NamedTuple

from sortedcontainers import SortedDict

_dict_get = dict.get
_dict_pop = dict.pop
_dict_set = dict.__setitem__
_new = tuple.__new__

# A record is the bytes of one struct: size, time, index, stack (0 when
# none), then a byte holding the source and a no-stack flag; a block that a
# realloc moved also carries its moves and copied bytes.  29 bytes (a 64-byte
# object, not tracked by the garbage collector) instead of a 7-tuple and the
# four int objects it holds (~224 bytes, GC-tracked).  struct.pack checks the
# ranges: a field that does not fit raises struct.error, and the block is then
# kept as a Block.
_PLAIN = struct.Struct("<qqqiB")
_MOVED = struct.Struct("<qqqiBqq")
_PLAIN_LEN = _PLAIN.size
#: pack(size, time, index, stack or 0, source | NO_STACK when stack is None)
pack_plain = _PLAIN.pack
NO_STACK = 8
_size_from = struct.Struct("<q").unpack_from
_plain_from = _PLAIN.unpack_from
_moved_from = _MOVED.unpack_from


class Block(NamedTuple):
    """A live block.  ``time``/``index``/``stack`` are those of the event that
    produced the block (an alloc, or the realloc that last moved or resized
    it); ``moves`` counts moving reallocs in its history and ``copied`` the
    bytes those moves copied."""

    size: int
    time: int
    index: int
    stack: int | None
    source: int
    moves: int = 0
    copied: int = 0


def pack(size: int, time: int, index: int, stack: int | None, source: int, moves: int = 0, copied: int = 0) -> Any:
    """The compact record of a block: bytes, or a :class:`Block` when a field
    does not fit the layout.  ``source`` must be 0-7 to pack."""
    flags = source if stack is not None else source | NO_STACK
    try:
        if 0 <= source < NO_STACK:
            if moves or copied:
                return _MOVED.pack(size, time, index, stack or 0, flags, moves, copied)
            return pack_plain(size, time, index, stack or 0, flags)
    except struct.error:
        pass
    return Block(size, time, index, stack, source, moves, copied)


def unpack(rec: Any) -> Block:
    """The :class:`Block` of a record made by :func:`pack` (a Block as it is)."""
    if rec.__class__ is not bytes:
        return rec
    if len(rec) == _PLAIN_LEN:
        size, time, index, stack, flags = _plain_from(rec)
        # tuple.__new__: the NamedTuple's own __new__ is a Python function
        return _new(Block, (size, time, index, None if flags & NO_STACK else stack, flags & 7, 0, 0))
    size, time, index, stack, flags, moves, copied = _moved_from(rec)
    return _new(Block, (size, time, index, None if flags & NO_STACK else stack, flags & 7, moves, copied))


def size_of(rec: Any) -> int:
    """The size field of a record."""
    try:
        return _size_from(rec)[0]
    except TypeError:
        return rec.size


def _span(rec: Any) -> int:
    """Bytes a record's block covers (a zero-size block spans one)."""
    try:
        return _size_from(rec)[0] or 1
    except TypeError:
        return rec.size or 1


def moved(rec: Any, size: int, time: int, index: int, stack: int | None, source: int, moving: bool) -> Any:
    """The record of the block a realloc makes of ``rec`` (a move adds one
    move and ``rec``'s size to the bytes copied)."""
    if rec.__class__ is bytes and len(rec) == _PLAIN_LEN:  # never moved: no decoding
        moves = copied = 0
        old_size = _size_from(rec)[0]
    else:
        old = unpack(rec)
        moves, copied, old_size = old.moves, old.copied, old.size
    if moving:
        return pack(size, time, index, stack, source, moves + 1, copied + old_size)
    return pack(size, time, index, stack, source, moves, copied)


class BlockMap(SortedDict):
    """Address -> block of one heap, sorted by address (see the module doc).

    The public mapping interface gives :class:`Block` values; ``place``,
    ``take`` and the ``dict`` methods work on raw records.
    """

    # --- public accessors, decoding -------------------------------------
    def __getitem__(self, address: int) -> Block:
        return unpack(dict.__getitem__(self, address))

    def get(self, address: int, default: Any = None) -> Any:  # type: ignore[override]
        rec = _dict_get(self, address)
        return default if rec is None else unpack(rec)

    def pop(self, address: int, *default: Any) -> Any:  # type: ignore[override]
        if address in self:
            return unpack(super().pop(address))
        return super().pop(address, *default)

    def popitem(self, index: int = -1) -> tuple[int, Block]:
        address, rec = super().popitem(index)
        return address, unpack(rec)

    def setdefault(self, address: int, default: Any = None) -> Any:
        return unpack(super().setdefault(address, default))

    # --- fused updates on raw records ---------------------------------------
    def place(self, address: int, end: int, rec: Any) -> bool:
        """Insert ``rec`` at ``address`` when ``[address, end)`` overlaps no live
        block (a zero-size block spans one byte) and return True; otherwise
        change nothing and return False.  O(log n)."""
        sl = self._list
        maxes = sl._maxes
        lists = sl._lists
        if not maxes:
            lists.append([address])
            maxes.append(address)
            sl._len = 1
            _dict_set(self, address, rec)
            return True
        pos = _bisect_left(maxes, address)
        last = pos == len(maxes)  # after every live block
        if last:
            pos -= 1
            sub = lists[pos]
            j = len(sub)
            prev = sub[-1]
        else:
            sub = lists[pos]
            j = _bisect_left(sub, address)
            if sub[j] < end:
                return False
            prev = sub[j - 1] if j else (lists[pos - 1][-1] if pos else None)
        if prev is not None:
            prev_rec = _dict_get(self, prev)
            try:  # _span inlined
                reach = prev + (_size_from(prev_rec)[0] or 1)
            except TypeError:
                reach = prev + (prev_rec.size or 1)
            if reach > address:
                return False
        sub.insert(j, address)
        if last:
            maxes[pos] = address
        sl._len += 1
        if sl._index or len(sub) > sl._load << 1:
            sl._expand(pos)
        _dict_set(self, address, rec)
        return True

    def take(self, address: int) -> Any:
        """Remove the block at ``address`` and return its raw record (None when
        no block starts there).  O(log n)."""
        rec = _dict_pop(self, address, None)
        if rec is None:
            return None
        sl = self._list
        maxes = sl._maxes
        pos = _bisect_left(maxes, address)
        lists = sl._lists
        sub = lists[pos]
        j = _bisect_left(sub, address)
        # what SortedList._delete does when no sublist merges or empties and
        # there is no positional index (a lone sublist never merges)
        if (len(sub) > (sl._load >> 1) + 1 or (len(sub) > 1 and len(lists) == 1)) and not sl._index:
            del sub[j]
            sl._len -= 1
            if j == len(sub):
                maxes[pos] = sub[-1]
        else:
            sl._delete(pos, j)
        return rec

    # --- range questions ----------------------------------------------------
    def containing(self, address: int) -> tuple[int, Block] | None:
        """The live block whose span holds ``address`` (O(log n))."""
        start = self.floor(address)
        if start is not None:
            rec = _dict_get(self, start)
            if address < start + (size_of(rec) or 1):
                return start, unpack(rec)
        return None

    def floor(self, address: int) -> int | None:
        """The greatest block address <= ``address`` (None when there is none)."""
        sl = self._list
        maxes = sl._maxes
        if not maxes:
            return None
        pos = _bisect_left(maxes, address)
        if pos == len(maxes):
            return maxes[-1]
        sub = sl._lists[pos]
        j = _bisect_left(sub, address)
        if sub[j] == address:
            return address
        if j:
            return sub[j - 1]
        return sl._lists[pos - 1][-1] if pos else None

    def starting_in(self, lo: int, hi: int) -> list[int]:
        """Addresses of the blocks that start in ``[lo, hi)``, ascending."""
        return list(self._list.irange(lo, hi, inclusive=(True, False)))
