"""Compilation of operators, function calls and aggregates (part of the compiler).

Each handler type-checks its operands and returns a specialised closure: a
comparison against a constant captures the constant, ``in`` against a
constant list uses a frozenset, ``like`` compiles its globs once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lark import Tree

from heaplint.rules import registry as R
from heaplint.rules import types as T
from heaplint.rules.diagnostics import did_you_mean
from heaplint.rules.fastcompare import compare_const, compare_operand
from heaplint.rules.inline import chain_src, src_fn
from heaplint.rules.globs import compile_glob

if TYPE_CHECKING:  # pragma: no cover
    from heaplint.rules.compiler import Compiled, Compiler

_EVENT_SCOPES = (R.EVENT, R.ANOMALY)


def _inter(a: frozenset | None, b: frozenset | None) -> frozenset | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def _union(a: frozenset | None, b: frozenset | None) -> frozenset | None:
    if a is None or b is None:
        return None
    return a | b


def compile_operator(comp: "Compiler", tree: Tree) -> "Compiled":
    """Dispatch for the operator nodes of the grammar."""
    from heaplint.rules.compiler import Compiled, fold, op_fn

    data = tree.data
    if data in ("or_op", "and_op"):
        a, b = comp.node(tree.children[0]), comp.node(tree.children[1])
        word = "or" if data == "or_op" else "and"
        for side, node in ((a, tree.children[0]), (b, tree.children[1])):
            if side.type != T.BOOL:
                raise comp.error("HLR024", f"'{word}' needs conditions (bool) on both sides, not {side.type}", node)
        prec = 1 if word == "or" else 2
        text = f"{a.paren(prec)} {word} {b.paren(prec)}"
        if a.const:  # fold, keeping the written text for `rules explain`
            keep = b if (bool(a.value) == (word == "and")) else a
            return Compiled(keep.fn, T.BOOL, text, prec, keep.const, keep.value, keep.kinds, keep.anomalies)
        if b.const and comp.env.known_kind is not None:
            # specialised for one event kind (runtime closures only): expressions
            # have no side effects, so `x and true` is x and `x and false` is false
            keep = a if (bool(b.value) == (word == "and")) else b
            return Compiled(keep.fn, T.BOOL, text, prec, keep.const, keep.value, keep.kinds, keep.anomalies)
        terms = _terms(word, a) + _terms(word, b)
        if len(terms) > _MAX_CHAIN:  # a new chain with the previous one as its first term
            terms = (a, b)
        fn = chain_fn(word, tuple(t.fn for t in terms))
        if word == "and":
            return Compiled(fn, T.BOOL, text, prec, kinds=_inter(a.kinds, b.kinds),
                            anomalies=_inter(a.anomalies, b.anomalies), chain=(word, terms))
        return Compiled(fn, T.BOOL, text, prec, kinds=_union(a.kinds, b.kinds),
                        anomalies=_union(a.anomalies, b.anomalies), chain=(word, terms))
    if data == "not_op":
        a = comp.node(tree.children[0])
        if a.type != T.BOOL:
            raise comp.error("HLR024", f"'not' needs a condition (bool), not {a.type}", tree.children[0])
        fa = a.fn
        return fold(comp, tree, Compiled(lambda c: not fa(c), T.BOOL, f"not {a.paren(3)}", 3), [a])
    if data == "compare":
        left, op_tok, right = tree.children
        a, b, op = comp.node(left), comp.node(right), str(op_tok)
        ordering = op not in ("==", "!=")
        if not T.comparable(a.type, b.type, ordering):
            why = "cannot be ordered" if ordering and T.comparable(a.type, b.type, False) else "cannot be compared"
            raise comp.error("HLR024", f"{a.type} and {b.type} {why} with '{op}'", op_tok)
        out = Compiled(_compare(op_fn(op), op, a, b), T.BOOL, f"{a.paren(5)} {op} {b.paren(5)}", 4)
        _kind_sets(out, op, a, b)
        return fold(comp, tree, out, [a, b])
    if data in ("in_op", "not_in_op"):
        a, b = comp.node(tree.children[0]), comp.node(tree.children[1])
        word = "in" if data == "in_op" else "not in"
        if not T.is_list(b.type):
            raise comp.error("HLR024", f"'{word}' needs a list on the right, e.g. [a, b], not {b.type}", tree.children[1])
        if not T.comparable(a.type, T.item_type(b.type), False):
            raise comp.error("HLR024", f"{a.type} cannot be looked up in a {b.type}", tree)
        fa = a.fn
        negate = data == "not_in_op"
        if b.const and a.ev_index is not None:
            values, i = frozenset(b.value), a.ev_index
            fn = (lambda c: c.ev[i] not in values) if negate else (lambda c: c.ev[i] in values)
        elif b.const:
            values = frozenset(b.value)
            fn = (lambda c: fa(c) not in values) if negate else (lambda c: fa(c) in values)
        else:
            fb = b.fn
            fn = (lambda c: fa(c) not in fb(c)) if negate else (lambda c: fa(c) in fb(c))
        out = Compiled(fn, T.BOOL, f"{a.paren(5)} {word} {b.paren(5)}", 4)
        if b.const and not negate:
            if a.ref == "kind":
                out.kinds = frozenset(b.value)
            elif a.ref == "anomaly":
                out.anomalies = frozenset(b.value)
        return fold(comp, tree, out, [a, b])
    if data in ("like_op", "not_like_op"):
        a, b = comp.node(tree.children[0]), comp.node(tree.children[1])
        if a.type != T.STRING:
            raise comp.error("HLR024", f"'like' matches strings, not {a.type}", tree.children[0])
        if b.type not in (T.STRING, T.list_of(T.STRING)) or not b.const:
            raise comp.error("HLR024", "'like' needs a constant glob string or list of globs on the right",
                             tree.children[1])
        try:
            matchers = [compile_glob(p) for p in (b.value if isinstance(b.value, tuple) else (b.value,))]
        except ValueError as err:
            raise comp.error("HLR028", str(err), tree.children[1]) from None
        fa = a.fn
        if len(matchers) == 1:
            m = matchers[0]
            fn = lambda c: m(fa(c))  # noqa: E731
        else:
            fn = lambda c: any(m(s) for s in (fa(c),) for m in matchers)  # noqa: E731
        word = "like"
        if data == "not_like_op":
            inner, word = fn, "not like"
            fn = lambda c: not inner(c)  # noqa: E731
        return fold(comp, tree, Compiled(fn, T.BOOL, f"{a.paren(5)} {word} {b.paren(5)}", 4), [a, b])
    if data == "matches_op":
        raise comp.error("HLR029", "regular expressions are not supported: a rule file must not be able to stall "
                         "the engine with a backtracking pattern; use 'like' with * and ? globs", tree)
    if data == "binop":
        left, op_tok, right = tree.children
        a, b, op = comp.node(left), comp.node(right), str(op_tok)
        type_ = T.arithmetic(op, a.type, b.type)
        if type_ is None:
            raise comp.error("HLR024", f"cannot compute {a.type} {op} {b.type}", op_tok)
        prec = 6 if op in "+-" else 7
        text = f"{a.paren(prec)} {op} {b.paren(prec + 1)}"
        if op == "/" and _total(a) is not None and _total(b) is not None:  # a share of two window counts
            p, q = _total(a), _total(b)
            fn = lambda c: (w[p] / d) if (d := (w := c.win)[q]) else 0  # noqa: E731
            return Compiled(fn, type_, text, prec, win=("share", p, q))
        return fold(comp, tree, Compiled(_arith(op, a.fn, b.fn), type_, text, prec), [a, b])
    if data == "neg":
        a = comp.node(tree.children[0])
        if a.type not in T.NUMERIC:
            raise comp.error("HLR024", f"cannot negate a {a.type}", tree)
        fa = a.fn
        return fold(comp, tree, Compiled(lambda c: -fa(c), a.type, f"-{a.paren(8)}", 8), [a])
    raise comp.error("HLR020", f"unsupported construct '{data}'", tree)  # pragma: no cover


#: longest and/or chain evaluated by one closure (``a and b and c`` is one
#: call, not two nested ones; a value as Python's ``and``/``or`` gives it)
_MAX_CHAIN = 4


def _terms(word: str, side: "Compiled") -> tuple:
    if side.chain is not None and side.chain[0] == word:
        return side.chain[1]
    return (side,)


def chain_fn(word: str, terms: tuple):
    """One closure for ``terms[0] and terms[1] and ...`` (or ``or``), 1 to 4 terms."""
    if len(terms) == 1:
        return terms[0]
    return chain_src(word, terms)  # one closure; code generators paste its source (rules/inline.py)


def _total(a: "Compiled") -> int | None:
    """The position of a window count() or sum() in ctx.win (None: not one)."""
    return a.win[1] if a.win is not None and a.win[0] == "total" else None


def _compare(op, sym: str, a: "Compiled", b: "Compiled"):
    fa, fb = a.fn, b.fn
    if b.const:
        fdef = R.FIELDS.get(a.ref) if a.ref is not None else None
        fast = compare_const(op, sym, a, b.value, fdef.getters.get(R.EVENT) if fdef is not None else None)
        if fast is not None:
            return fast
        return compare_operand(op, sym, fa, b.value)
    return lambda c: op(fa(c), fb(c))


def _kind_sets(out: "Compiled", op: str, a: "Compiled", b: "Compiled") -> None:
    """``kind == alloc`` can only hold for alloc events (the runtime's index)."""
    if op not in ("==", "!="):
        return
    for field_side, const_side in ((a, b), (b, a)):
        if const_side.const and field_side.ref in ("kind", "anomaly"):
            if op == "==":
                s = frozenset([const_side.value])
            elif field_side.ref == "kind":
                s = frozenset(c.value for c in R.CONSTANT_LIST if c.type == T.KIND) - {const_side.value}
            else:
                s = frozenset(c.value for c in R.CONSTANT_LIST if c.type == T.ANOMALY) - {const_side.value}
            if field_side.ref == "kind":
                out.kinds = s
            else:
                out.anomalies = s


#: products of integers wider than this are computed in floating point, so a
#: rule cannot build numbers of millions of digits by repeated squaring
_MAX_PRODUCT_BITS = 256


def _mul(x, y):
    if type(x) is int and type(y) is int and x.bit_length() + y.bit_length() > _MAX_PRODUCT_BITS:
        return float(x) * float(y)
    return x * y


def _arith(op: str, fa, fb):
    if op == "+":
        return lambda c: fa(c) + fb(c)
    if op == "-":
        return lambda c: fa(c) - fb(c)
    if op == "*":
        return lambda c: _mul(fa(c), fb(c))
    if op == "/":  # division by zero gives 0: a rule must never crash a run
        return lambda c: (fa(c) / d) if (d := fb(c)) else 0
    return lambda c: (fa(c) % d) if (d := fb(c)) else 0


def _accepts(param: str, t: str) -> bool:
    if param == t:
        return True
    if param == "number":
        return t in T.NUMERIC
    if param == "string|list[string]":
        return t in (T.STRING, T.list_of(T.STRING))
    if param == T.FLOAT:
        return t in T.UNITLESS
    if param in T.UNITS:
        return t == T.INT
    return False


def build_call_or_aggregate(comp: "Compiler", tree: Tree) -> "Compiled":
    """A function call ``f(a, b)`` or an aggregate ``count(where ...)``."""
    from heaplint.rules.compiler import Compiled, fold

    name_tok, args_tree, where_tree = tree.children
    name = str(name_tok)
    arg_trees = list(args_tree.children) if args_tree is not None else []
    adef = R.AGGREGATES.get(name)
    if adef is not None:
        return _aggregate(comp, tree, adef, arg_trees, where_tree)
    fdef = R.FUNCTIONS.get(name)
    if fdef is None:
        hint = did_you_mean(name, [*R.FUNCTIONS, *R.AGGREGATES])
        if not hint and name in R.FIELDS:
            hint = f" ('{name}' is a field: write it without parentheses)"
        raise comp.error("HLR022", f"unknown function '{name}'{hint}", name_tok)
    if where_tree is not None:
        raise comp.error("HLR027", f"'where' belongs in aggregates ({', '.join(R.AGGREGATES)}), not in {name}()", where_tree)
    scope = comp.scope
    if scope not in fdef.scopes:
        where = ", ".join(s for s in R.SCOPES if s in fdef.scopes)
        raise comp.error("HLR026", f"{name}() is not available in {scope} scope (available in: {where})", name_tok)
    if len(arg_trees) != len(fdef.params):
        raise comp.error("HLR025", f"{name}() takes {len(fdef.params)} argument(s), got {len(arg_trees)}: "
                         f"{fdef.signature()}", tree)
    args = [comp.node(a) for a in arg_trees]
    for i, ((pname, ptype), arg, node) in enumerate(zip(fdef.params, args, arg_trees)):
        if not _accepts(ptype, arg.type):
            raise comp.error("HLR024", f"argument '{pname}' of {name}() must be {ptype}, not {arg.type}", node)
        if i in fdef.const_args and not arg.const:
            raise comp.error("HLR024", f"argument '{pname}' of {name}() must be a constant", node)
    if fdef.returns == "=0":
        type_ = args[0].type
    elif fdef.returns == "=unify":
        type_ = T.unify(args[0].type, args[1].type)
        if type_ is None:
            raise comp.error("HLR024", f"{name}() of {args[0].type} and {args[1].type}", tree)
    else:
        type_ = fdef.returns
    try:
        fn = fdef.build(scope, [a.fn for a in args], [a.value if a.const else None for a in args])
    except ValueError as err:
        raise comp.error("HLR028", str(err), tree) from None
    out = Compiled(fn, type_, f"{name}({', '.join(a.text for a in args)})")
    return fold(comp, tree, out, args) if fdef.pure else out


def _aggregate(comp: "Compiler", tree: Tree, adef: Any, arg_trees: list, where_tree: Tree | None) -> "Compiled":
    from heaplint.rules.compiler import AggSpec, Compiled

    env = comp.env
    if env.agg_mode is None:
        raise comp.error("HLR027", f"aggregate {adef.name}() is only allowed in window rules ('... over 10s') "
                         "and end rules with scope: blocks", tree)
    if comp.in_aggregate:
        raise comp.error("HLR027", "aggregates cannot be nested", tree)
    if adef.window_only and env.agg_mode != "window":
        raise comp.error("HLR027", f"{adef.name}() needs a time window; end rules have none", tree)
    want = 1 if adef.takes_value else 0
    if len(arg_trees) != want:
        form = adef.signature()
        raise comp.error("HLR025", f"{adef.name}() takes {want} value argument(s): {form}", tree)
    saved = comp.scope
    comp.in_aggregate, comp.scope = True, env.inner_scope or comp.scope
    try:
        value = comp.node(arg_trees[0]) if want else None
        if value is not None and value.type not in T.NUMERIC:
            raise comp.error("HLR024", f"{adef.name}() needs a number, not {value.type}", arg_trees[0])
        where = comp.node(where_tree.children[0]) if where_tree is not None else None
        if where is not None and where.type != T.BOOL:
            raise comp.error("HLR024", f"'where' needs a condition (bool), not {where.type}", where_tree)
    finally:
        comp.in_aggregate, comp.scope = False, saved
    inner = " ".join(p for p in (value.text if value else "", f"where {where.text}" if where else "") if p)
    text = f"{adef.name}({inner})"
    for spec in env.aggs:
        if spec.text == text:
            break
    else:
        pos = sum(2 if s.name == "avg" else 1 for s in env.aggs)
        spec = AggSpec(len(env.aggs), adef.name, text, value.fn if value else None, where.fn if where else None,
                       where.kinds if where else None, pos, where_const=bool(where.value) if where and where.const else None,
                       where_text=where.text if where else None, where_terms=_terms("and", where) if where else ())
        env.aggs.append(spec)
    type_ = adef.result(value.type if value else None)
    if env.agg_mode == "window":
        return Compiled(window_reader(spec), type_, text, win=_win_shape(spec))
    slot = spec.slot
    return Compiled(lambda c: c.win[slot], type_, text)


def _win_shape(spec: Any) -> tuple | None:
    """How fastcompare reads a window aggregate in place (None: min, max)."""
    if spec.name in ("count", "sum"):
        return ("total", spec.pos)
    if spec.name == "rate":
        return ("rate", spec.pos, spec.rate_cell)
    if spec.name == "avg":
        return ("share", spec.pos, spec.pos + 1)
    return None


def window_reader(spec: Any):
    """The value of a window aggregate: ``ctx.win`` is the group's totals list
    (:class:`heaplint.rules.windows.Group`), read in place, nothing copied."""
    p = spec.pos
    name = spec.name
    # source-carrying (rules/inline.py): a condition that reads it pastes it in
    if name in ("count", "sum"):
        return src_fn("c.win[{0}]", p)
    if name == "rate":
        return src_fn("c.win[{0}] * {1}[0]", p, spec.rate_cell)
    if name == "avg":
        return src_fn("((w[{0}] / d) if (d := (w := c.win)[{1}]) else 0)", p, p + 1)
    return src_fn("(q[0][1] if (q := c.win[{0}]) else 0)", p)  # min, max: a monotonic deque
