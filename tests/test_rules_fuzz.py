"""Bad rule files never produce a traceback: random mutations of valid rule
files either load or raise located HeaplintErrors."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rules_kit import DATA_RULES

from heaplint.engine.errors import ErrorCollection, HeaplintError
from heaplint.rules.ruleset import load_ruleset

SOURCES = [p.read_text() for p in sorted(DATA_RULES.glob("*.yaml"))]
ALPHABET = " \n\t:-[]{}()'\"#&*!|>$%,.0123456789abcxyzSIZEover by where and not in like 10s 64KiB"


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(SOURCES))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.text(alphabet=ALPHABET, min_size=1, max_size=6))
        if action == "insert":
            text = text[:pos] + chunk + text[pos:]
        elif action == "delete":
            text = text[:pos] + text[pos + len(chunk):]
        else:
            text = text[:pos] + chunk + text[pos + len(chunk):]
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated())
def test_mutated_rule_files_fail_cleanly(tmp_path, text):
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    try:
        load_ruleset([str(path)], no_builtin=True, use_config=False)
    except ErrorCollection as errs:
        for err in errs.errors:
            assert isinstance(err, HeaplintError) and err.code and err.path
    except HeaplintError as err:
        assert err.code


TOKENS = ["size", "kind", "==", "alloc", "(", ")", "[", "]", ",", "and", "or", "not", "in", "like", "over", "by",
          "where", "count", "sum", "max", "10s", "64KiB", "0x10", "1.5", "\"x*\"", "$p", "+", "-", "*", "/", "%",
          ">", "<=", "heap", "stack", "known", "slope", "anomaly", "DOUBLE_FREE", "true", "#", ".", "="]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14))
def test_random_expressions_fail_cleanly(tokens):
    from rules_kit import compile_expr

    from heaplint.engine.errors import RuleError
    from heaplint.rules import registry as R

    for scope, env in ((R.EVENT, {"agg_mode": "window", "inner_scope": R.EVENT, "allow_anomaly": True}),
                       (R.HEAP, {})):
        try:
            compile_expr(" ".join(tokens), scope=scope, params={"p": ("int", 1)}, **env)
        except RuleError as err:
            assert err.code


RECORD_TOKENS = ["alloc", "realloc", "free", "create", "destroy", "start", "end", "0x1000", "0xI1", "16", "->",
                 "t=+1ms", "t=", "pid=2", "heap=0x", "source=LFH", "source=", "stack=a;b", "i*2", "1+", "x=1", "=",
                 "64KiB", "1.5", "0x", "9" * 40]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(RECORD_TOKENS), min_size=1, max_size=6))
def test_random_minitrace_records_fail_cleanly(tokens):
    from rules_kit import trace

    from heaplint.engine.errors import RuleError

    try:
        trace(" ".join(tokens))
    except RuleError as err:
        assert err.code == "HLR060"
