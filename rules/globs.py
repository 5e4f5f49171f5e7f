"""Glob patterns for stack frames and image names, without regular expressions.

``*`` matches any run of characters, ``?`` one character; matching ignores
case (Windows module and image names are case-insensitive).  Matching is a
left-to-right scan of the pattern's literal segments, so its cost is bounded
by the length of the text times the length of the pattern: there is no
backtracking to blow up, whatever the pattern.
"""

from __future__ import annotations

from typing import Callable

MAX_PATTERN = 1000


def _find(text: str, seg: str, start: int) -> int:
    """Leftmost index >= start where ``seg`` (with ``?`` wildcards) matches."""
    if "?" not in seg:
        return text.find(seg, start)
    last = len(text) - len(seg)
    for i in range(start, last + 1):
        if _at(text, seg, i):
            return i
    return -1


def _at(text: str, seg: str, i: int) -> bool:
    if i < 0 or i + len(seg) > len(text):
        return False
    for j, ch in enumerate(seg):
        if ch != "?" and text[i + j] != ch:
            return False
    return True


def compile_glob(pattern: str) -> Callable[[str], bool]:
    """A case-insensitive matcher for ``pattern``."""
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"glob pattern longer than {MAX_PATTERN} characters")
    pat = pattern.casefold()
    if "*" not in pat:
        if "?" not in pat:
            return lambda s: s.casefold() == pat
        return lambda s: len(s) == len(pat) and _at(s.casefold(), pat, 0)
    segs = pat.split("*")
    head, middle, tail = segs[0], [s for s in segs[1:-1] if s], segs[-1]
    if not middle and "?" not in head and "?" not in tail:
        need = len(head) + len(tail)
        return lambda s: len(s) >= need and (t := s.casefold()).startswith(head) and t.endswith(tail)

    def match(s: str) -> bool:
        t = s.casefold()
        if not _at(t, head, 0):
            return False
        pos = len(head)
        for seg in middle:
            i = _find(t, seg, pos)
            if i < 0:
                return False
            pos = i + len(seg)
        return len(t) - len(tail) >= pos and _at(t, tail, len(t) - len(tail))

    return match
