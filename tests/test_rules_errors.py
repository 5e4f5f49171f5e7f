"""Every error code, from a minimal rule or config file, with its location,
its caret and its "did you mean"; and collection of every error in one run."""

from __future__ import annotations

import pytest
from rules_kit import errors_of, write_rules

from heaplint.engine.errors import ErrorCollection, HeaplintError
from heaplint.rules.diagnostics import CODES
from heaplint.rules.ruleset import load_ruleset

OK = "id: T001\nname: ok\nwhen: size > 1\n"

# (code, rule file text, line, col, message fragment)
RULE_ERRORS = [
    ("HLR001", OK + "severty: error\n", 4, 1, "did you mean 'severity'"),
    ("HLR002", "id: T001\nwhen: size > 1\n", 1, 1, "missing required key 'name'"),
    ("HLR002", "macro: m\n", 1, 1, "missing 'expr'"),
    ("HLR003", OK + "tags: security\n", 4, 7, "'tags' must be a list"),
    ("HLR003", "- 1\n- 2\n", 1, 1, "must be a mapping"),
    ("HLR003", OK + "message: [1]\n", 4, 10, "'message' must be a string"),
    ("HLR003", OK + "dedup: sometimes\n", 4, 8, "dedup is one of"),
    ("HLR003", "list: l\nitems: []\n", 2, 8, "non-empty"),
    ("HLR004", OK + "when: size > 2\n", 4, 1, "duplicate key 'when'"),
    ("HLR005", OK + "---\nid: T001\nname: other\nwhen: size > 1\n", 5, 1, "duplicate rule id 'T001'"),
    ("HLR005", OK + "---\nid: T002\nname: ok\nwhen: size > 1\n", 6, 1, "duplicate rule name 'ok'"),
    ("HLR005", "macro: m\nexpr: true\n---\nmacro: m\nexpr: false\n", 4, 1, "duplicate macro 'm'"),
    ("HLR006", "id: t-1\nname: ok\nwhen: size > 1\n", 1, 5, "rule id"),
    ("HLR006", "id: T001\nname: Not_Kebab\nwhen: size > 1\n", 2, 7, "kebab-case"),
    ("HLR006", OK + "let:\n  Bad: size\n", 5, 3, "let name"),
    ("HLR007", OK + "severity: fatal\n", 4, 11, "unknown severity 'fatal'"),
    ("HLR007", OK + "severity: {error: full_coverage}\n", 4, 11, "needs 'default'"),
    ("HLR007", OK + "severity: {default: note, fatal: true}\n", 4, 27, "unknown severity 'fatal'"),
    ("HLR008", "id: T001\nname: ok\n", 1, 1, "needs a trigger"),
    ("HLR008", OK + "at: start\n", 4, 5, "'at' can only be 'end'"),
    ("HLR008", OK + "at: end\n", 1, 1, "needs 'scope'"),
    ("HLR008", OK + "scope: heap\n", 4, 8, "belongs to end rules"),
    ("HLR010", OK + "tags: [a\n", 5, 1, "YAML syntax error"),
    ("HLR011", OK + "description: !!python/object:os.system x\n", 4, 14, "not allowed"),
    ("HLR012", OK + "tags: " + "[" * 50 + "]" * 50 + "\n", 4, 46, "nesting deeper"),
    ("HLR020", "id: T001\nname: ok\nwhen: size >\n", 3, 13, "unexpected end"),
    ("HLR021", "id: T001\nname: ok\nwhen: sise > 1\n", 3, 7, "did you mean 'size'"),
    ("HLR021", "id: T001\nname: ok\nwhen: kind == ALLOC\n", 3, 15, "did you mean 'alloc'"),
    ("HLR022", "id: T001\nname: ok\nwhen: knwn(address)\n", 3, 7, "did you mean 'known'"),
    ("HLR023", "id: T001\nname: ok\nparams: {limit: 5}\nwhen: size > $limt\n", 4, 14, "did you mean 'limit'"),
    ("HLR024", "id: T001\nname: ok\nwhen: size\n", 3, 7, "when: must be a bool"),
    ("HLR024", "id: T001\nname: ok\nwhen: size > 10s\n", 3, 12, "cannot be compared"),
    ("HLR024", "list: l\nitems: [size]\n", 2, 9, "must be constants"),
    ("HLR024", OK + "severity: {default: note, error: 1}\n", 4, 34, "must be a bool"),
    ("HLR025", "id: T001\nname: ok\nwhen: known()\n", 3, 7, "takes 1 argument"),
    ("HLR026", "id: T001\nname: ok\nwhen: slope() > 1\n", 3, 7, "not available in event scope"),
    ("HLR026", "id: T001\nname: ok\nat: end\nscope: heap\nwhen: lifetime > 1s\n", 5, 7, "not available in heap"),
    ("HLR026", OK + "severity: {default: note, error: size > 1}\n", 4, 34, "not available in coverage"),
    ("HLR027", "id: T001\nname: ok\nwhen: count() > 5\n", 3, 7, "aggregates need a window"),
    ("HLR027", "id: T001\nname: ok\nwhen: count() over 1s by nope > 5\n", 3, 26, "cannot group by 'nope'"),
    ("HLR027", "id: T001\nname: ok\nwhen: count() over 1s by heap > 5 and count() over 2s by heap > 1\n",
     3, 39, "share one window"),
    ("HLR027", "id: T001\nname: ok\nat: end\nscope: blocks\nwhen: count() over 1s > 1\n", 5, 20, "use 'by'"),
    ("HLR027", "id: T001\nname: ok\nat: end\nscope: heap\nwhen: count() by stack > 1\n", 5, 7, "belong to window rules"),
    ("HLR027", "id: T001\nname: ok\nat: end\nscope: blocks\nwhen: rate() by stack > 1\n", 5, 7, "time window"),
    ("HLR027", "id: T001\nname: ok\nwhen: count(where count() > 1) over 1s > 1\n", 3, 19, "cannot be nested"),
    ("HLR027", OK + "by: [nope]\n", 4, 6, "cannot group findings by 'nope'"),
    ("HLR028", "id: T001\nname: ok\nwhen: size > 5xb\n", 3, 14, "unknown unit"),
    ("HLR028", OK + "cooldown: 5\n", 4, 11, "cooldown"),
    ("HLR029", "id: T001\nname: ok\nwhen: 'image matches \"a+\"'\n", 3, 8, "regular expressions"),
    ("HLR030", "macro: a\nexpr: b\n---\nmacro: b\nexpr: a\n---\n" + OK.replace("size > 1", "a"), 5, 7, "refers to itself"),
    ("HLR040", OK + "params:\n  Bad: 1\n", 5, 3, "lower_snake_case"),
    ("HLR040", OK + "params:\n  x: {type: color, default: 1}\n", 5, 6, "unknown type"),
    ("HLR040", OK + "params:\n  x: {type: size, default: 10s}\n", 5, 6, "expected a size"),
    ("HLR040", OK + "params:\n  x: {default: 1, doc: a, unit: b}\n", 5, 6, "unknown key 'unit'"),
    ("HLR040", OK + "params:\n  x: 5zz\n", 5, 6, "unknown unit"),
    ("HLR040", OK + "params:\n  x: .nan\n", 5, 6, "not a finite number"),
    ("HLR040", OK + "params:\n  x: {type: float, default: .inf}\n", 5, 6, "not a finite number"),
    ("HLR050", OK + "message: 'x {size'\n", 4, 13, "unclosed '{'"),
    ("HLR050", OK + "message: 'x size}'\n", 4, 17, "unmatched '}'"),
    ("HLR050", OK + "message: '{size:zz}'\n", 4, 17, "unknown format spec"),
    ("HLR050", OK + "message: 'a {} b'\n", 4, 13, "empty"),
    ("HLR021", OK + "message: 'x {sise}'\n", 4, 14, "did you mean 'size'"),
    ("HLR060", OK + "examples: 3\n", 4, 11, "must be a list"),
    ("HLR060", OK + "examples:\n  - {expect: 1}\n", 5, 5, "needs 'expect'"),
    ("HLR060", OK + "examples:\n  - {expect: 1, trace: ['alloc 0x1000']}\n", 5, 26, "needs ADDRESS SIZE"),
    ("HLR060", OK + "examples:\n  - {expect: 1, trace: ['alloc 0x1 1 colour=red']}\n", 5, 38, "unknown key 'colour'"),
    ("HLR060", OK + "examples:\n  - {expect: 1, trace: ['malloc 0x1 1']}\n", 5, 26, "unknown record kind"),
    ("HLR060", OK + "examples:\n  - {expect: 1, trace: ['alloc 0x1 1 source=FAST']}\n", 5, 45, "unknown source"),
    ("HLR060", OK + "examples:\n  - {expect: 1, trace: ['alloc 0x1 1'], facts: {lost: 1}}\n", 5, 49, "unknown fact"),
    ("HLR060", OK + "examples:\n  - {expect: -1, trace: []}\n", 5, 14, "number of findings"),
    ("HLR060", OK + "examples:\n  - {expect: 1, trace: [{repeat: 0, events: []}]}\n", 5, 34, "count from 1"),
    ("HLR060", OK + "examples:\n  - {expect: 1, exepct: 2, trace: []}\n", 5, 17, "did you mean 'expect'"),
]


@pytest.mark.parametrize("code, text, line, col, fragment", RULE_ERRORS,
                         ids=[f"{e[0]}-{i}" for i, e in enumerate(RULE_ERRORS)])
def test_rule_error(tmp_path, code, text, line, col, fragment):
    errors = errors_of(tmp_path, text)
    matching = [e for e in errors if e.code == code and fragment in e.message]
    assert matching, [str(e) for e in errors]
    err = matching[0]
    assert err.path.endswith("rules.yaml")
    assert (err.line, err.col) == (line, col), str(err)
    src, caret = err.context.splitlines()
    lines = text.splitlines()
    if line <= len(lines):  # (a syntax error can sit at the end of the file)
        assert src.strip() == lines[line - 1].strip()[: len(src.strip())]
    assert caret.index("^") == 4 + col - 1


def test_every_code_is_exercised():
    config_codes = {"HLR013", "HLR041", "HLR070"}  # tested in test_rules_config / below
    assert {e[0] for e in RULE_ERRORS} | config_codes == set(CODES)


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"id: T001\nname: caf\xe9\n")
    with pytest.raises(ErrorCollection) as info:
        load_ruleset([str(bad), str(tmp_path / "missing.yaml")], no_builtin=True, use_config=False)
    codes = sorted(e.code for e in info.value.errors)
    assert codes == ["HLR013", "HLR013"]


def test_all_errors_of_all_files_in_one_run(tmp_path):
    write_rules(tmp_path, "id: T001\nname: a\nwhen: sise > 1\n---\nid: T002\nname: b\nwhen: size >\n", "one.yaml")
    write_rules(tmp_path, "id: T003\nname: c\nwhen: knwn(1)\nbogus: 1\n", "two.yaml")
    write_rules(tmp_path, "a: [\n", "three.yaml")
    with pytest.raises(ErrorCollection) as info:
        load_ruleset([str(tmp_path)], no_builtin=True, use_config=False)
    got = [(e.path.rsplit("/", 1)[-1], e.line, e.code) for e in info.value.errors]
    assert got == [
        ("one.yaml", 3, "HLR021"),
        ("one.yaml", 7, "HLR020"),
        ("three.yaml", 2, "HLR010"),
        ("two.yaml", 3, "HLR022"),
        ("two.yaml", 4, "HLR001"),
    ]


def test_expression_positions_in_block_scalars(tmp_path):
    text = "id: T001\nname: ok\nwhen: |\n  kind == alloc\n    and sise > 1\n"
    (err,) = errors_of(tmp_path, text)
    assert (err.line, err.col, err.code) == (5, 9, "HLR021")
    text = "id: T001\nname: ok\nwhen: >-\n    kind == alloc and\n    sise > 1\n"
    (err,) = errors_of(tmp_path, text)
    assert (err.line, err.col) == (5, 5)
    text = 'id: T001\nname: ok\nwhen: "kind == alloc and \\\n  sise > 1"\n'
    (err,) = errors_of(tmp_path, text)
    assert (err.line, err.col) == (4, 3)


def test_errors_in_macros_point_into_the_macro(tmp_path):
    text = "macro: big\nexpr: sise > 1\n---\n" + OK.replace("size > 1", "big")
    (err,) = errors_of(tmp_path, text)
    assert (err.line, err.col, err.code) == (2, 7, "HLR021")


def test_cli_overrides_are_usage_errors(tmp_path):
    errs = errors_of(tmp_path, OK + "params: {limit: 5}\n", params={"T001.limt": "3"})
    assert [e.code for e in errs] == ["HLR041"] and "did you mean 'limit'" in errs[0].message
    assert isinstance(errs[0], HeaplintError) and errs[0].path == "--param"
    errs = errors_of(tmp_path, OK + "params: {limit: 5}\n", params={"T001.limit": "lots"})
    assert "malformed number 'lots'" in errs[0].message
    errs = errors_of(tmp_path, OK + "params: {limit: 0.5}\n", params={"T001.limit": "nan"})
    assert "'nan' is not a finite number" in errs[0].message
    errs = errors_of(tmp_path, OK, params={"T009.limit": "1"})
    assert "no rule 'T009'" in errs[0].message
    errs = errors_of(tmp_path, OK, enable=["nothing"])
    assert errs[0].code == "HLR070" and "matches no rule" in errs[0].message
