"""Every grammar construct: parsing, types, values, canonical text, kind
analysis, constant folding, and located errors (data-driven tables)."""

from __future__ import annotations

import pytest
from rules_kit import compile_expr, trace

from heaplint.engine.events import Kind
from heaplint.engine.state import HeapState
from heaplint.rules import registry as R
from heaplint.rules import types as T
from heaplint.rules.context import Ctx
from heaplint.rules.expr import Expression, parse
from heaplint.engine.errors import RuleError


def event_ctx(*records: str, facts: dict | None = None) -> Ctx:
    """A context positioned after the last record (as the runtime sets it)."""
    events, info, stacks = trace(*records, facts=facts)
    state = HeapState()
    anomalies = ()
    for ev in events:
        anomalies = state.apply(ev)
    c = Ctx(state, info)
    c.stacks = stacks
    c.ev, c.anomalies, c.ended = events[-1], anomalies, state.ended
    if anomalies:
        c.anom = anomalies[0]
    return c


CTX_RECORDS = ("alloc 0x1000 16", "alloc 0x2000 100 source=LFH stack=app!make;app!main")

# (expression, type, value on CTX, canonical text or None for "same as written")
CASES = [
    ("1 + 2 * 3", T.INT, 7, None),
    ("(1 + 2) * 3", T.INT, 9, None),
    ("10 - 4 - 3", T.INT, 3, None),
    ("10 - (4 - 3)", T.INT, 9, None),
    ("7 % 4", T.INT, 3, None),
    ("7 / 2", T.FLOAT, 3.5, None),
    ("size / 0", T.SIZE, 0, None),
    ("size % 0", T.SIZE, 0, None),
    ("-size", T.SIZE, -100, None),
    ("- -3", T.INT, 3, "--3"),
    ("0x1F", T.INT, 31, "31"),
    ("1_000", T.INT, 1000, "1000"),
    ("2.5", T.FLOAT, 2.5, None),
    ("64KiB", T.SIZE, 65536, None),
    ("1.5MiB", T.SIZE, 1572864, "1536KiB"),
    ("4096B", T.SIZE, 4096, "4KiB"),
    ("2kb", T.SIZE, 2000, "2000B"),
    ("10ms", T.DURATION, 10_000_000, None),
    ("2m", T.DURATION, 120_000_000_000, None),
    ("1500us", T.DURATION, 1_500_000, None),
    ('"a\\"b"', T.STRING, 'a"b', '"a\\"b"'),
    ("'single'", T.STRING, "single", '"single"'),
    ("true and not false", T.BOOL, True, None),
    ("not (size > 50)", T.BOOL, False, "not size > 50"),
    ("size > 50 or size < 10", T.BOOL, True, None),
    ("size > 50 and (kind == free or size < 200)", T.BOOL, True, None),
    ("size >= 100 and size <= 100 and size != 99", T.BOOL, True, None),
    ("kind == alloc", T.BOOL, True, None),
    ("kind in [alloc, free]", T.BOOL, True, None),
    ("kind not in [free]", T.BOOL, True, None),
    ("size in (100, 200)", T.BOOL, True, "size in [100, 200]"),
    ("size in [1, size]", T.BOOL, True, None),
    ("source == LFH", T.BOOL, True, None),
    ("image like \"*.EXE\"", T.BOOL, True, None),
    ("image not like \"x*\"", T.BOOL, True, None),
    ("image like [\"x*\", \"app*\"]", T.BOOL, True, None),
    ("[1, 2.5]", "list[float]", (1, 2.5), None),
    ("[64KiB, 1]", "list[size]", (65536, 1), None),
    ("address + 16", T.ADDRESS, 0x2010, None),
    ("address - 0x1000", T.ADDRESS, 0x1000, "address - 4096"),
    ("address - heap", T.SIZE, 0x2000 - 0x10, None),
    ("size * 2 + 1", T.SIZE, 201, None),
    ("size / 4", T.SIZE, 25.0, None),
    ("size / size", T.FLOAT, 1.0, None),
    ("time + 5s", T.DURATION, 1_000_000 + 5_000_000_000, None),
    ("size # a trailing comment", T.SIZE, 100, "size"),
    ("least(size, 10)", T.SIZE, 10, None),
    ("greatest(1, 2.5)", T.FLOAT, 2.5, None),
    ("abs(-3)", T.INT, 3, None),
    ("stack_has(\"app!make\")", T.BOOL, True, None),
    ("stack_has([\"nope\", \"APP!M*\"])", T.BOOL, True, None),
    ("top_frame()", T.STRING, "app!make", None),
    ("frame(1)", T.STRING, "app!main", None),
    ("frame(9)", T.STRING, "", None),
    ("stack_depth()", T.INT, 2, None),
]


@pytest.mark.parametrize("text, type_, value, canon", CASES, ids=[c[0] for c in CASES])
def test_expression(text, type_, value, canon):
    c = compile_expr(text)
    assert c.type == type_
    assert c.fn(event_ctx(*CTX_RECORDS)) == value
    assert c.text == (canon or text)
    # the canonical text compiles to the same thing
    again = compile_expr(c.text)
    assert again.type == type_ and again.text == c.text


def test_constants_fold():
    c = compile_expr("1 + 2 * 3 > 6 and 64KiB > 1KiB")
    assert c.const and c.value is True
    assert not compile_expr("size + 1 > 3").const
    assert compile_expr("false and size > 1").const


@pytest.mark.parametrize(
    "text, kinds",
    [
        ("kind == alloc", {Kind.ALLOC}),
        ("kind == realloc and size > 1", {Kind.REALLOC}),
        ("alloc == kind", {Kind.ALLOC}),
        ("kind in [alloc, free] or kind == destroy", {Kind.ALLOC, Kind.FREE, Kind.DESTROY}),
        ("kind in [alloc, free] and kind != free", {Kind.ALLOC}),
        ("kind == alloc or size > 1", None),
        ("not (kind == alloc)", None),
        ("size > 1", None),
    ],
)
def test_kind_analysis(text, kinds):
    c = compile_expr(text)
    assert (None if c.kinds is None else set(c.kinds)) == kinds


def test_anomaly_analysis_and_mode():
    from heaplint.rules.compiler import Compiler, Env

    env = Env(scope=R.EVENT, allow_anomaly=True)
    e = Expression("anomaly in [DOUBLE_FREE, UNKNOWN_FREE] and anomaly_size >= 0")
    c = Compiler(env).compile(e, parse(e))
    assert env.uses_anomaly and c.anomalies == {"double-free", "unknown-free"}


def test_params_are_constants_shown_by_name():
    c = compile_expr("size > $limit", params={"limit": (T.SIZE, 64)})
    assert c.text == "size > $limit" and c.fn(event_ctx(*CTX_RECORDS)) is True


# (expression, code, column of the caret, a fragment of the message)
ERRORS = [
    ("size >", "HLR020", 7, "unexpected end"),
    ("size > > 1", "HLR020", 8, "unexpected '>'"),
    ("size = 1", "HLR020", 6, "'=='"),
    ("size.real", "HLR020", 5, "attribute"),
    ("size && 1", "HLR020", 6, "'and'"),
    ("{size}", "HLR020", 1, "braces"),
    ("size @ 1", "HLR020", 6, "unexpected character"),
    ("", "HLR020", 1, "empty"),
    ("sise > 1", "HLR021", 1, "did you mean 'size'"),
    ("kind == ALLOC", "HLR021", 9, "did you mean 'alloc'"),
    ("source == SLOWPTH", "HLR021", 11, "SLOWPATH"),
    ("known", "HLR021", 1, "is a function"),
    ("knwn(address)", "HLR022", 1, "did you mean 'known'"),
    ("size()", "HLR022", 1, "is a field"),
    ("size > $limt", "HLR023", 8, "unknown parameter"),
    ("size > 10s", "HLR024", 6, "cannot be compared"),
    ("kind > alloc", "HLR024", 6, "cannot be ordered"),
    ("kind == SLOWPATH", "HLR024", 6, "cannot be compared"),
    ("size + 1s", "HLR024", 6, "cannot compute"),
    ("\"a\" + 1", "HLR024", 5, "cannot compute"),
    ("size and true", "HLR024", 1, "'and' needs"),
    ("not size", "HLR024", 5, "'not' needs"),
    ("-image", "HLR024", 1, "negate"),
    ("size in 1", "HLR024", 9, "needs a list"),
    ("size in [\"a\"]", "HLR024", 1, "cannot be looked up"),
    ("[1, \"a\"]", "HLR024", 1, "mixes"),
    ("[[1]]", "HLR024", 1, "lists"),
    ("size like \"x\"", "HLR024", 1, "matches strings"),
    ("image like image", "HLR024", 12, "constant glob"),
    ("known(\"x\")", "HLR024", 7, "must be address"),
    ("stack_has(image)", "HLR024", 11, "constant"),
    ("known()", "HLR025", 1, "takes 1 argument"),
    ("abs(1, 2)", "HLR025", 1, "takes 1 argument"),
    ("slope() > 1", "HLR026", 1, "not available in event scope"),
    ("age > 1s", "HLR026", 1, "available in: block"),
    ("count() > 1", "HLR027", 1, "only allowed in window rules"),
    ("size > 1 over 10s", "HLR027", 8, "belong to window rules"),
    ("known(address) where size > 1", "HLR020", 16, "unexpected"),
    ("99999999999999999999999999999999", "HLR028", 1, "digits"),
    ("size > 5xb", "HLR028", 8, "unknown unit"),
    ("size > 99999999TiB", "HLR028", 8, "64 bits"),
    ("image matches \"(a+)+$\"", "HLR029", 1, "regular expressions"),
]


@pytest.mark.parametrize("text, code, col, fragment", ERRORS, ids=[e[0] or "<empty>" for e in ERRORS])
def test_expression_errors(text, code, col, fragment):
    with pytest.raises(RuleError) as info:
        compile_expr(text, params={"limit": (T.INT, 1)})
    err = info.value
    assert err.code == code, str(err)
    assert fragment in err.message
    assert err.line is None  # without a source file there is no file position


def test_expression_error_columns_via_file(tmp_path):
    """With a YAML source, errors carry file line/col; check the columns in the table."""
    from heaplint.rules.diagnostics import SourceText
    from heaplint.rules.yamlsrc import load_yaml
    from heaplint.rules.compiler import Compiler, Env

    for text, code, col, _ in ERRORS:
        if not text:
            continue
        src = "when: " + ("'" + text.replace("'", "''") + "'")
        y = load_yaml(SourceText("r.yaml", src + "\n"))
        node = y.documents[0].nodes["when"][1]
        e = Expression.from_node(y.source, node)
        with pytest.raises(RuleError) as info:
            Compiler(Env(scope=R.EVENT, params={"limit": (T.INT, 1)})).compile(e, parse(e), expect=None)
        assert info.value.code == code
        assert (info.value.line, info.value.col) == (1, 7 + col), text
        assert info.value.context.splitlines()[1].index("^") == 4 + 6 + col


def test_deep_expressions_are_refused():
    with pytest.raises(RuleError) as info:
        compile_expr("(" * 60 + "1" + ")" * 60)
    assert info.value.code == "HLR028"
    with pytest.raises(RuleError) as info:
        compile_expr(" + ".join(["1"] * 200))
    assert info.value.code == "HLR028"
    assert compile_expr(" + ".join(["1"] * 50)).value == 50


def test_comparisons_do_not_chain():
    with pytest.raises(RuleError) as info:
        compile_expr("1 < size < 10")
    assert info.value.code == "HLR020"


# --- property: the compiler agrees with Python on random expressions ------------
# Python's precedence for these operators is the language's, so Python itself is
# the reference model (eval of generated test text, never of rule files).
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _maybe_paren(text_strategy):
    return st.builds(lambda t, p: f"({t})" if p else t, text_strategy, st.booleans())


def _arith(depth: int):
    leaf = st.integers(0, 50).map(str)
    if depth == 0:
        return leaf
    sub = _arith(depth - 1)
    return st.one_of(leaf, _maybe_paren(st.builds(lambda a, op, b: f"{a} {op} {b}", sub, st.sampled_from("+-*"), sub)),
                     st.builds(lambda a: f"-{a}", leaf))


def _cond(depth: int):
    cmp = st.builds(lambda a, op, b: f"{a} {op} {b}", _arith(2), st.sampled_from(["<", "==", ">=", "!="]), _arith(2))
    if depth == 0:
        return cmp
    sub = _cond(depth - 1)
    return st.one_of(
        cmp,
        _maybe_paren(st.builds(lambda a, w, b: f"{a} {w} {b}", sub, st.sampled_from(["and", "or"]), sub)),
        st.builds(lambda a: f"not ({a})", sub),
        st.builds(lambda a: f"not {a}", cmp),
    )


@settings(max_examples=200, deadline=None)
@given(_cond(3))
def test_compiled_values_match_python(text):
    expected = eval(text, {"__builtins__": {}})  # noqa: S307 - generated arithmetic only
    c = compile_expr(text)
    assert c.const and c.value == expected, text
    again = compile_expr(c.text)  # the canonical form means the same
    assert again.value == expected and again.text == c.text


@pytest.mark.parametrize("word, hint", [("op", "kind"), ("addr", "address"), ("True", "true")])
def test_common_misspellings_get_hints(word, hint):
    with pytest.raises(RuleError) as info:
        compile_expr(f"{word} == {word}")
    assert f"did you mean '{hint}'" in info.value.message


@pytest.mark.parametrize(
    "text, code, fragment",
    [
        ("count() over 10 by heap > 1", "HLR024", "needs a unit"),
        ("count() over 10KiB by heap > 1", "HLR027", "constant duration"),
        ("count() over time by heap > 1", "HLR027", "constant duration"),
        ("count() over 0s by heap > 1", "HLR027", "positive"),
        ("count() over 1s by heap, heap > 1", "HLR027", "listed twice"),
        ("count() over 1s by lifetime > 1 and count() over 1s by heap > 1", "HLR027", "'over 1s by lifetime'"),
    ],
)
def test_window_errors(text, code, fragment):
    with pytest.raises(RuleError) as info:
        compile_expr(text, agg_mode="window", inner_scope=R.EVENT)
    assert info.value.code == code and fragment in info.value.message
