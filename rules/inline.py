"""Closures that carry their own source, so that hot paths can inline them.

Most conditions of real rules are and-chains of comparisons with a constant
(rules/fastcompare.py).  Called as closures, each term is a Python call.  A
closure made by :func:`src_fn` is compiled from a *template*, a Python
expression over the context ``c`` whose ``{0}``, ``{1}``, ... name its
constants, and keeps that template in ``fn.src``.  A code generator (the
window steps of rules/windowgen.py) then pastes the expression into the code
it generates instead of calling the closure; the closure and the pasted text
are the same source, so they cannot disagree.  A closure without ``src`` is
called, as before.

Templates are plain expressions without braces of their own; a name bound
inside one by ``:=`` (``e``, ``w``, ``d``, ``q``; generated code uses none of them for its own) is assigned before it is read in
that same expression, so two pasted expressions may reuse it.
"""

from __future__ import annotations

import builtins
import types
from typing import Any, Callable

Fn = Callable[[Any], Any]

_CODE: dict[str, types.CodeType] = {}  # template -> code of its lambda
_SERIAL = [0]  # generated functions so far (each gets its own file name, for profiles)
#: generated source -> its code: every trace of a run generates the same
#: functions (the names in their namespace are numbered in the same order)
_COMPILED: dict[str, types.CodeType] = {}
_MAX_COMPILED = 512


def src_fn(template: str, *consts: Any) -> Fn:
    """``lambda c: TEMPLATE`` with the constants bound, carrying ``src``."""
    code = _CODE.get(template)
    if code is None:
        names = [f"_k{i}" for i in range(len(consts))]
        code = _CODE[template] = eval("lambda c: " + template.format(*names), {}).__code__  # noqa: S307
    ns = {f"_k{i}": v for i, v in enumerate(consts)}
    ns["__builtins__"] = builtins
    fn = types.FunctionType(code, ns, "<lambda>")
    fn.src = (template, consts)  # type: ignore[attr-defined]
    return fn


def chain_src(word: str, fns: tuple) -> Fn:
    """``f0(c) and f1(c) and ...`` (``word``: and, or) as one
    source-carrying closure: the source of each ``fns[i]`` that carries one,
    a call of the others."""
    if word not in ("and", "or"):
        raise ValueError(f"not a chain: {word!r}")
    parts: list[str] = []
    consts: list[Any] = []
    for f in fns:
        template, cs = getattr(f, "src", None) or ("{0}(c)", (f,))
        shifted = template.format(*(f"{{{len(consts) + i}}}" for i in range(len(cs))))
        parts.append(f"({shifted})")
        consts.extend(cs)
    return src_fn(f" {word} ".join(parts), *consts)


class Inliner:
    """Builds the namespace of one generated function: :meth:`expr` gives
    the text that evaluates a closure on ``c`` (its pasted source, or a call)."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {}

    def name(self, value: Any, hint: str = "k") -> str:
        """A global of the generated code bound to ``value``."""
        name = f"_{hint}{len(self.ns)}"
        self.ns[name] = value
        return name

    def expr(self, fn: Fn, local: tuple[tuple[str, str], ...] = ()) -> str:
        """``local``: ``(text, name)`` pairs, a local of the generated code
        that holds what ``text`` reads (``("c.ev", "ev")``)."""
        src = getattr(fn, "src", None)
        if src is None:
            return f"{self.name(fn, 'f')}(c)"
        template, consts = src
        for text, name in local:
            template = template.replace(text, name)
        return "(" + template.format(*(self.name(v) for v in consts)) + ")"

    def compile(self, source: str, fname: str) -> Fn:
        """Run ``source`` (which defines ``fname``) in the namespace; return it."""
        code = _COMPILED.get(source)
        if code is None:
            if len(_COMPILED) >= _MAX_COMPILED:
                _COMPILED.clear()
            _SERIAL[0] += 1
            code = _COMPILED[source] = compile(source, f"<heaplint generated {fname} #{_SERIAL[0]}>", "exec")
        exec(code, self.ns)  # noqa: S102
        return self.ns[fname]
