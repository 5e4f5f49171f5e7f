"""Configuration: discovery, extends (profiles and paths), layering of
enable/disable, severity and parameter overrides, pyproject, located errors."""

from __future__ import annotations

import textwrap

import pytest

from heaplint.engine.errors import ErrorCollection
from heaplint.engine.findings import Severity
from heaplint.rules.config import available_profiles, find_config, load_config
from heaplint.rules.ruleset import load_ruleset

RULES = """
id: C001
name: big-alloc
tags: [perf, memory]
params: {limit: 64KiB}
when: kind == alloc and size > $limit
---
id: C002
name: opt-in
enabled: false
tags: [memory]
when: kind == free
---
id: C003
name: other
severity: note
when: kind == destroy
"""


@pytest.fixture()
def project(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    return tmp_path


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def ruleset(project, config_text=None, **kw):
    cfg = None
    if config_text is not None:
        cfg = str(write(project / "heaplint.yaml", config_text))
    return load_ruleset(no_builtin=True, config_path=cfg, use_config=False, **kw)


def enabled(rs):
    return sorted(r.id for r in rs.enabled)


def test_rules_paths_are_relative_to_the_config(project, monkeypatch):
    monkeypatch.chdir("/")
    rs = ruleset(project, "rules: [rules/]\n")
    assert enabled(rs) == ["C001", "C003"]


def test_disable_then_enable_within_a_layer(project):
    rs = ruleset(project, "rules: [rules]\nenable: [C002]\ndisable: ['*']\n")
    assert enabled(rs) == ["C002"]
    rs = ruleset(project, "rules: [rules]\ndisable: [memory]\n")
    assert enabled(rs) == ["C003"]
    rs = ruleset(project, "rules: [rules]\ndisable: [big-*]\n")
    assert enabled(rs) == ["C003"]


def test_command_line_comes_last(project):
    rs = ruleset(project, "rules: [rules]\ndisable: [C001]\n", enable=["C001"], disable=["other"])
    assert enabled(rs) == ["C001"]


def test_severity_and_param_overrides(project):
    rs = ruleset(project, """
        rules: [rules]
        severity: {big-alloc: error}
        params:
          C001: {limit: 1KiB}
    """)
    r = rs.get("C001")
    assert r.severity == Severity.ERROR and r.params == {"limit": 1024}
    rs = ruleset(project, "rules: [rules]\nparams: {C001.limit: 2KiB}\n", params={"big-alloc.limit": "4096"})
    assert rs.get("C001").params == {"limit": 4096}


def test_extends_paths_and_profiles(project):
    write(project / "base.yaml", "rules: [rules]\ndisable: [C003]\nparams: {C001: {limit: 8}}\n")
    rs = ruleset(project, "extends: [default, ./base.yaml]\nparams: {C001.limit: 16}\n")
    assert enabled(rs) == ["C001"] and rs.get("C001").params == {"limit": 16}
    assert "default" in available_profiles() and "strict" in available_profiles()
    rs = ruleset(project, "extends: strict\nrules: [rules]\n")
    assert enabled(rs) == ["C001", "C002", "C003"]


def test_pyproject_table(project, monkeypatch):
    write(project / "pyproject.toml", """
        [project]
        name = "x"

        [tool.heaplint]
        rules = ["rules"]
        disable = ["C001"]

        [tool.heaplint.params]
        "C001.limit" = "1KiB"
    """)
    sub = project / "src" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert find_config() == str(project / "pyproject.toml")
    rs = load_ruleset(no_builtin=True)
    assert enabled(rs) == ["C003"] and rs.get("C001").params == {"limit": 1024}


def test_yaml_config_is_preferred_and_found_upward(project, monkeypatch):
    write(project / "pyproject.toml", "[tool.heaplint]\nrules = ['nowhere']\n")
    write(project / "heaplint.yaml", "rules: [rules]\n")
    monkeypatch.chdir(project / "rules")
    assert find_config() == str(project / "heaplint.yaml")
    assert len(load_ruleset(no_builtin=True).rules) == 3
    assert load_config(None, discover=False).files == []


@pytest.mark.parametrize(
    "text, code, line, col, fragment",
    [
        ("rulez: [rules]\n", "HLR001", 1, 1, "did you mean 'rules'"),
        ("extends: defualt\n", "HLR070", 1, 10, "did you mean 'default'"),
        ("extends: [./heaplint.yaml]\n", "HLR070", 1, 11, "extends cycle"),
        ("rules: [rules]\ndisable: [C099]\n", "HLR070", 2, 11, "matches no rule"),
        ("rules: [rules]\nparams: {C001: {limt: 1}}\n", "HLR041", 2, 23, "did you mean 'limit'"),
        ("rules: [rules]\nparams: {C001: {limit: 10s}}\n", "HLR041", 2, 24, "expected a size"),
        ("rules: [rules]\nparams: {C009.limit: 1}\n", "HLR041", 2, 22, "no rule 'C009'"),
        ("rules: [rules]\nseverity: {C001: fatal}\n", "HLR041", 2, 18, "unknown severity"),
        ("builtin: maybe\n", "HLR070", 1, 10, "true or false"),
        ("enable: 5\n", "HLR070", 1, 9, "list of rule ids"),
        ("- 1\n", "HLR070", 1, 1, "must be a mapping"),
        ("extends: 5\n", "HLR070", 1, 10, "'extends' is a profile name or path"),  # was a TypeError (fuzzing)
        ("extends: {a: 1}\n", "HLR070", 1, 10, "'extends' is a profile name or path"),
    ],
)
def test_config_errors_are_located(project, text, code, line, col, fragment):
    with pytest.raises(ErrorCollection) as info:
        ruleset(project, text)
    errs = [e for e in info.value.errors if e.code == code and fragment in e.message]
    assert errs, [str(e) for e in info.value.errors]
    assert (errs[0].line, errs[0].col) == (line, col) and errs[0].path.endswith("heaplint.yaml")


def test_missing_config_file(project):
    with pytest.raises(ErrorCollection) as info:
        load_ruleset(no_builtin=True, config_path=str(project / "nope.yaml"))
    assert info.value.errors[0].code == "HLR070"


def test_toml_extends_of_another_type_is_an_error(project):
    # found by fuzzing: a TOML date or number in extends was iterated (TypeError, exit 3)
    for value in ("1979-05-27T07:32:00Z", "5"):
        write(project / "pyproject.toml", f"[tool.heaplint]\nextends = {value}\n")
        with pytest.raises(ErrorCollection) as info:
            load_ruleset(no_builtin=True, config_path=str(project / "pyproject.toml"))
        assert "'extends' is a profile name or path" in info.value.errors[0].message


def test_bad_toml_is_reported(project):
    write(project / "pyproject.toml", "[tool.heaplint\n")
    with pytest.raises(ErrorCollection) as info:
        load_ruleset(no_builtin=True, config_path=str(project / "pyproject.toml"))
    assert "invalid TOML" in info.value.errors[0].message
