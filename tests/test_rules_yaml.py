"""Safe YAML loading with positions: limits, tags, duplicate keys, and the
mapping of scalar characters back to file positions for every scalar style."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heaplint.engine.errors import RuleError
from heaplint.rules.diagnostics import SourceText, caret_context, did_you_mean
from heaplint.rules.yamlsrc import YList, YMap, load_yaml, read_source, scalar_offsets


def load(text: str):
    return load_yaml(SourceText("f.yaml", text))


def fails(text: str) -> RuleError:
    with pytest.raises(RuleError) as info:
        load(text)
    return info.value


def test_values_and_nodes_are_kept():
    y = load("a: 1\nb: [x, 'y']\nc: {d: true}\n---\ne: 2.5\n")
    doc = y.documents[0]
    assert isinstance(doc, YMap) and isinstance(doc["b"], YList)
    assert doc == {"a": 1, "b": ["x", "y"], "c": {"d": True}}
    assert doc.nodes["c"][1].start_mark.line == 2
    assert y.documents[1] == {"e": 2.5}


def test_keys_are_their_text_not_yaml_booleans():
    # YAML 1.1 reads `on`/`yes` as booleans; rule keys must stay strings
    assert set(load("on: 1\nyes: 2\n").documents[0]) == {"on", "yes"}


@pytest.mark.parametrize(
    "text, code, line, col",
    [
        ("a: 1\na: 2\n", "HLR004", 2, 1),
        ("a: !!python/object:os.system x\n", "HLR011", 1, 4),
        ("--- !!python/name:os.system\n", "HLR011", 1, 5),
        ("a: !!binary aGVsbG8=\n", "HLR011", 1, 4),
        ("a: 2024-01-01\n", "HLR011", 1, 4),
        ("b: &x {k: 1}\na:\n  <<: *x\n", "HLR011", 3, 3),
        ("a: [1, 2\n", "HLR010", 2, 1),
        ("a: *nope\n", "HLR010", 1, 4),
        ("a: &x [*x]\n", "HLR010", 1, 8),
        ("? [1, 2]\n: 3\n", "HLR003", 1, 3),
        ("a: " + "[" * 60 + "]" * 60 + "\n", "HLR012", 1, 43),
        ("a: '" + "x" * 70_000 + "'\n", "HLR012", 1, 4),
        ("a: " + "9" * 5000 + "\n", "HLR028", 1, 4),
        ("".join(f"k{i}: &a{i} {i}\n" for i in range(101)), "HLR012", 101, 7),
    ],
)
def test_refused_yaml_is_located(text, code, line, col):
    err = fails(text)
    assert (err.code, err.line, err.col) == (code, line, col), str(err)
    assert "^" in err.context


def test_alias_bomb_is_refused_at_the_alias():
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i, name in enumerate("bcdefgh"):
        prev = "abcdefgh"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
    err = fails("\n".join(lines) + "\n")
    assert err.code == "HLR012" and "alias" in err.message
    assert err.line == 5  # level e would expand to 111,111 nodes


def test_moderate_aliases_are_fine():
    y = load("a: &a [1, 2]\nb: [*a, *a]\n")
    assert y.documents[0]["b"] == [[1, 2], [1, 2]]


def test_file_size_limit(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: 1\n" * (2 << 20))
    with pytest.raises(RuleError) as info:
        read_source(str(big))
    assert info.value.code == "HLR012" and info.value.line == 1


def test_not_utf8_is_located(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(RuleError) as info:
        read_source(str(p))
    assert (info.value.code, info.value.line, info.value.col) == ("HLR013", 2, 7)


def test_missing_file():
    with pytest.raises(RuleError) as info:
        read_source("/nonexistent/x.yaml")
    assert info.value.code == "HLR013"


STYLES = [
    "k: {v}\n",
    "k: '{v}'\n",
    'k: "{v}"\n',
    "k: |\n  {v}\n",
    "k: >\n  {v}\n",
    "k: >-\n    {v}\n",
]


@pytest.mark.parametrize("template", STYLES)
def test_scalar_offsets_point_at_each_character(template):
    value = "size > 64KiB and kind == realloc"
    text = template.format(v=value)
    y = load(text)
    node = y.documents[0].nodes["k"][1]
    offset = scalar_offsets(y.source, node)
    for i, ch in enumerate(node.value.rstrip("\n")):
        if ch != " ":
            assert text[offset(i)] == ch, (template, i)


def test_scalar_offsets_across_folded_lines():
    text = "k: >\n  kind == realloc and\n      sise > 1\n"
    y = load(text)
    node = y.documents[0].nodes["k"][1]
    i = node.value.index("sise")
    line, col = y.source.position(scalar_offsets(y.source, node)(i))
    assert (line, col) == (3, 7)


def test_scalar_offsets_through_escapes():
    text = 'k: "a \\"q\\" b"\n'
    y = load(text)
    node = y.documents[0].nodes["k"][1]
    assert node.value == 'a "q" b'
    off = scalar_offsets(y.source, node)
    assert text[off(node.value.index("b"))] == "b"


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="abcxyz0123456789 ()=<>$_", min_size=1, max_size=40).filter(lambda s: s.strip() == s))
def test_scalar_offsets_property(value):
    """For plain-safe values in quoted and block styles, every non-blank
    character maps to the same character in the file."""
    for template in ("k: '{v}'\n", 'k: "{v}"\n', "k: |\n  {v}\n", "k: >\n    {v}\n"):
        text = template.format(v=value)
        y = load(text)
        node = y.documents[0].nodes["k"][1]
        off = scalar_offsets(y.source, node)
        for i, ch in enumerate(node.value):
            if ch not in " \n":
                assert text[off(i)] == ch


def test_source_positions_and_lines():
    s = SourceText("p", "ab\ncd\n\nef")
    assert s.position(0) == (1, 1) and s.position(4) == (2, 2) and s.position(7) == (4, 1)
    assert s.index(1, 1) == 4
    assert [s.line_text(i) for i in range(1, 5)] == ["ab", "cd", "", "ef"]


def test_caret_context_keeps_tabs_and_cuts_long_lines():
    assert caret_context("\tab cd", 5, 2) == "    \tab cd\n    \t   ^^"
    ctx = caret_context("x" * 500 + "Y" + "x" * 500, 501)
    src, caret = ctx.split("\n")
    assert len(src) < 120 and src[caret.index("^")] == "Y"


@pytest.mark.parametrize(
    "word, names, hint",
    [
        ("sise", ["size", "site"], "size"),
        ("ALLOC", ["alloc", "free"], "alloc"),
        ("zzz", ["size"], None),
        ("Threshold", ["threshold"], "threshold"),
    ],
)
def test_did_you_mean(word, names, hint):
    out = did_you_mean(word, names)
    assert (out == f" (did you mean '{hint}'?)") if hint else out == ""
