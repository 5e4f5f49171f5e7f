"""The built-in rule pack: its files, examples, profiles and packaging."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from heaplint.engine.cli import main
from heaplint.engine.findings import Severity
from heaplint.rules.loader import builtin_dir
from heaplint.rules.ruleset import load_ruleset
from heaplint.rules.runtime import run_events
from heaplint.rules.testing import run_examples

ROOT = Path(__file__).resolve().parent.parent
BUILTIN = ROOT / "builtin_rules"

#: the rules issue 4 names, with their kebab-case names
EXPECTED = {
    "HL001": "realloc-unknown-old-address",
    "HL002": "slowpath-realloc-storm",
    "HL003": "unbounded-heap-growth",
    "HL004": "outstanding-allocations",
    "HL005": "heap-destroyed-with-live-blocks",
    "HL006": "double-free",
    "HL007": "free-of-unknown-address",
    "HL008": "free-on-wrong-heap",
    "HL009": "overlapping-allocation",
    "HL010": "realloc-growth-chain",
    "HL011": "invalid-source",
    "HL012": "temporary-allocation-churn",
    "HL013": "incomplete-trace",
    "HL014": "peak-live-bytes",
}


@pytest.fixture(scope="module")
def ruleset():
    return load_ruleset(use_config=False)


def profile(tmp_path: Path, name: str, extra: str = ""):
    cfg = tmp_path / "heaplint.yaml"
    cfg.write_text(f"extends: {name}\n{extra}", encoding="utf-8")
    return load_ruleset(config_path=str(cfg), use_config=False)


# --- the files -------------------------------------------------------------------


def test_the_pack_is_exactly_hl001_to_hl014(ruleset):
    assert {r.id: r.spec.name for r in ruleset.rules} == EXPECTED
    assert all(r.meta.source.startswith("builtin:") for r in ruleset.rules)


@pytest.mark.parametrize("rid", sorted(EXPECTED))
def test_one_self_describing_file_per_rule(ruleset, rid):
    rule = ruleset.get(rid)
    spec = rule.spec
    path = Path(spec.loc.yfile.source.path)
    assert path.name == f"{rid}-{EXPECTED[rid]}.yaml" and path.parent == Path(builtin_dir())
    assert spec.title and spec.title != spec.name and spec.tags and spec.message is not None
    desc = spec.description
    for section in ("**What it catches.**", "**Why it matters.**"):
        assert section in desc, f"{rid}: description lacks {section}"
    assert re.search(r"\*\*How to fix", desc), f"{rid}: description does not say how to fix or suppress"
    for name, p in spec.params.items():
        assert f"`{name}" in desc, f"{rid}: the default of '{name}' is not justified in the description"
        assert p.doc, f"{rid}: parameter '{name}' has no doc"
    expects = [ex.expect for ex in spec.examples]
    assert any(e > 0 for e in expects) and 0 in expects, f"{rid}: needs examples that fire and that do not"


def test_every_example_passes(ruleset):
    results = run_examples(ruleset)
    failed = [f"{x.rule_id} {x.example}: {x.detail}" for x in results if not x.passed]
    assert not failed, "\n".join(failed)
    assert {x.rule_id for x in results} == set(EXPECTED)


def test_rules_test_cli_on_the_folder(capsys):
    assert main(["rules", "test", str(BUILTIN), "--no-config"]) == 0
    out = capsys.readouterr().out
    assert "0 failed, 14 rule(s)" in out and "without examples" not in out


def test_an_example_that_stops_firing_fails(ruleset, tmp_path):
    """The example runner is a real test: a wrong expectation is reported."""
    text = (BUILTIN / "HL008-free-on-wrong-heap.yaml").read_text(encoding="utf-8")
    broken = text.replace("free 0x1000 heap=0x10\n", "free 0x1000 heap=0x20\n", 1)
    assert broken != text
    path = tmp_path / "broken.yaml"
    path.write_text(broken, encoding="utf-8")
    rs = load_ruleset([str(path), str(BUILTIN / "macros.yaml")], no_builtin=True, use_config=False)
    failed = [x for x in run_examples(rs) if not x.passed]
    assert [x.example for x in failed] == ["freed on the process heap, allocated on a private heap"]


# --- severities the issue prescribes ----------------------------------------------------


def severities(ruleset, rid, records, facts=None, **params):
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from rules_kit import trace  # noqa: E402
    from heaplint.rules.testing import _rule_for
    from heaplint.rules.model import Example

    events, info, stacks = trace(*records, facts=facts)
    rule = ruleset.get(rid)
    ex = Example("t", 1, events, info, stacks, params=params)
    findings, _ = run_events([_rule_for(ruleset, rule, ex)], events, info, stacks)
    return [f.severity for f in findings], findings


def test_integrity_errors_need_full_coverage(ruleset):
    full = ("start", "alloc 0x1000 16", "free 0x9000", "realloc 0x7000 0x8000 32 t=+1s")
    for rid in ("HL001", "HL007"):
        assert severities(ruleset, rid, full)[0] == [Severity.ERROR]
        assert severities(ruleset, rid, full[1:], facts={"attach": True})[0] == [Severity.NOTE]
        assert severities(ruleset, rid, full, facts={"events_lost": 1})[0] == [Severity.NOTE]


def test_hl004_is_a_warning_and_hl005_hl012_hl013_are_notes(ruleset):
    assert ruleset.get("HL004").severity == Severity.NOTE  # note unless the process end is seen ...
    assert [lvl for lvl, _ in ruleset.get("HL004").severity_when] == [Severity.WARNING]  # ... then a warning
    for rid in ("HL005", "HL012", "HL013"):
        assert ruleset.get(rid).severity == Severity.NOTE and not ruleset.get(rid).severity_when


def test_hl002_groups_by_heap_and_stack(ruleset):
    storm = [f"realloc 0x100000 0x100000 {300000 + i} source=SLOWPATH t=+5ms" for i in range(60)]
    other = [f"realloc 0x200000 0x200000 {300000 + i} source=SLOWPATH heap=0x20 t=+5ms" for i in range(60)]
    base = ["create heap=0x20", "alloc 0x100000 300000", "alloc 0x200000 300000 heap=0x20"]
    _, findings = severities(ruleset, "HL002", base + storm + other)
    assert sorted(f.heap for f in findings) == [0x10, 0x20]
    a = [s + " stack=app!A" for s in storm[:30]]
    b = [s + " stack=app!B" for s in storm[30:]]
    _, findings = severities(ruleset, "HL002", base + a + b, threshold=25)
    assert len(findings) == 2 and {f.stack for f in findings} == {("app!A",), ("app!B",)}
    # two storms seconds apart: one finding, two occurrences
    _, findings = severities(ruleset, "HL002", base + storm + ["alloc 0x9000 16 t=+3s"] + storm)
    assert [f.count for f in findings] == [2]


def test_hl010_reports_chain_length_and_bytes_copied(ruleset):
    recs = ["alloc 0x10000 64"] + [
        f"realloc {0x10000 + i * 0x1000:#x} {0x11000 + i * 0x1000:#x} {128 + i * 64}" for i in range(30)
    ] + [f"free {0x10000 + 30 * 0x1000:#x}"]
    _, findings = severities(ruleset, "HL010", recs)
    copied = sum(64 + i * 64 for i in range(30))
    assert len(findings) == 1
    assert "moved by 30 reallocs" in findings[0].message
    assert findings[0].evidence == {"chain": 30, "bytes_copied": copied}


def test_hl014_is_off_unless_a_limit_is_set(ruleset):
    assert ruleset.get("HL014").never
    recs = ("alloc 0x1000 64MiB", "free 0x1000")
    assert severities(ruleset, "HL014", recs)[0] == []
    assert severities(ruleset, "HL014", recs, limit="1MiB")[0] == [Severity.ERROR]


# --- profiles and packaging ------------------------------------------------------------


def test_default_profile_is_the_balanced_set(tmp_path, ruleset):
    rs = profile(tmp_path, "default")
    by_id = {r.id: r for r in rs.rules}
    assert all(r.meta.enabled for r in rs.rules)
    assert by_id["HL012"].severity == Severity.NOTE and by_id["HL014"].never
    # the default profile is what `heaplint check` runs without a configuration
    assert {r.id: (r.severity, r.params) for r in rs.rules} == {r.id: (r.severity, r.params) for r in ruleset.rules}


def test_strict_profile_turns_everything_up(tmp_path, ruleset):
    rs = profile(tmp_path, "strict")
    by_id = {r.id: r for r in rs.rules}
    assert all(r.meta.enabled for r in rs.rules)
    for rid in ("HL002", "HL010", "HL011"):
        assert by_id[rid].severity == Severity.ERROR
    for rid in ("HL005", "HL012", "HL013"):
        assert by_id[rid].severity == Severity.WARNING
    assert by_id["HL001"].severity_when, "coverage-dependent severities keep their conditions"
    assert by_id["HL002"].params["threshold"] < ruleset.get("HL002").params["threshold"]
    assert by_id["HL003"].params["min_slope"] < ruleset.get("HL003").params["min_slope"]
    assert by_id["HL004"].params["min_count"] < ruleset.get("HL004").params["min_count"]
    # a limit still turns HL014 on, and later layers override the profile
    rs = profile(tmp_path, "strict", "params: {HL014: {limit: 1GiB}}\nseverity: {HL002: note}\n")
    assert not rs.get("HL014").never and rs.get("HL002").severity == Severity.NOTE


def test_rules_list_shows_the_pack_as_builtin(capsys):
    assert main(["rules", "list", "--no-config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(EXPECTED)
    assert all(f"builtin:{rid}-{EXPECTED[rid]}.yaml" in rows[rid] for rid in EXPECTED)
    assert " off " in rows["HL014"] and " yes " in rows["HL003"]


def test_package_data_ships_rules_and_profiles():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    setuptools_cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert "heaplint.builtin_rules.profiles" in setuptools_cfg["packages"]
    data = setuptools_cfg["package-data"]
    assert "*.yaml" in data["heaplint.builtin_rules"] and "*.yaml" in data["heaplint.builtin_rules.profiles"]
    shipped = set(os.listdir(builtin_dir()))
    assert {f"{rid}-{name}.yaml" for rid, name in EXPECTED.items()} <= shipped
    assert {"default.yaml", "strict.yaml"} <= set(os.listdir(os.path.join(builtin_dir(), "profiles")))
    # data only: nothing but YAML and the package marker
    assert all(f.endswith(".yaml") or f in ("__init__.py", "profiles", "__pycache__") for f in shipped)


@pytest.mark.parametrize("shape", ["paired", "standalone"])
def test_hl001_never_fires_on_correct_reallocs_of_either_shape(ruleset, shape):
    """Synthetic healthy processes that move blocks by realloc, logged as the
    ReAlloc record alone or with its inner Alloc/Free in every order."""
    from heaplint.engine.synth import synthesize
    from heaplint.engine.synth_presets import build_spec

    trace = synthesize(build_spec("healthy-cache", seed=3, events=3000, realloc_shape=shape))
    findings, replay = run_events([ruleset.get("HL001")], trace.events(), trace.info, trace.stacks)
    moves = sum(p["realloc"][f"moves_{shape}"] for p in trace.truth["processes"])
    assert moves > 20 and findings == []


def test_profiles_work_without_the_builtin_rules(tmp_path):
    """`extends: strict` with `builtin: false` tunes nothing that is missing;
    a user's own reference to a missing rule is still an error."""
    from heaplint.engine.errors import ErrorCollection

    (tmp_path / "mine.yaml").write_text("id: ACME001\nname: big\nwhen: size > 1MiB\n", encoding="utf-8")
    rs = profile(tmp_path, "strict", "builtin: false\nrules: [mine.yaml]\n")
    assert [r.id for r in rs.rules] == ["ACME001"]
    with pytest.raises(ErrorCollection, match="no rule 'HL002'"):
        profile(tmp_path, "strict", "builtin: false\nrules: [mine.yaml]\nparams: {HL002: {threshold: 5}}\n")


def test_hl010_shows_the_stack_that_grew_the_buffer(ruleset):
    recs = ["alloc 0x10000 64 stack=app!StringBuilder::Append;app!main"] + [
        f"realloc {0x10000 + i * 0x1000:#x} {0x11000 + i * 0x1000:#x} {128 + i * 64} stack=app!StringBuilder::Append"
        for i in range(30)
    ] + [f"free {0x10000 + 30 * 0x1000:#x}"]
    _, findings = severities(ruleset, "HL010", recs)
    assert [f.stack for f in findings] == [("app!StringBuilder::Append",)]
