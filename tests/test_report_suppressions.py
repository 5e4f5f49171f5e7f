"""Suppressions: parsing with located errors, matching, usage, expiry."""

from __future__ import annotations

import datetime
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heaplint.engine.errors import ErrorCollection, HeaplintError, RuleError
from heaplint.engine.findings import Finding, Severity
from heaplint.engine.reports import ReportOptions, get_formatter
from heaplint.engine.suppressions import Suppression, apply_suppressions, load_suppressions, parse_suppressions
from report_sample import sample_result

TODAY = datetime.date(2025, 6, 1)


def errors_of(text: str) -> list[str]:
    with pytest.raises(HeaplintError) as info:
        parse_suppressions(text, "s.yaml")
    err = info.value
    return [str(e) for e in err.errors] if isinstance(err, ErrorCollection) else [str(err)]


def test_parse_full_entry():
    (s,) = parse_suppressions(
        "suppressions:\n"
        "  - rule: leak-at-exit\n"
        "    image: 'app*.exe'\n"
        "    frame: 'app!Cache::*'\n"
        "    heap: process-heap\n"
        "    max_bytes: 4KiB\n"
        "    reason: known cache leak, JIRA-12\n"
        "    expires: 2025-12-31\n",
        "s.yaml",
    )
    assert s == Suppression(
        source="s.yaml:2", reason="known cache leak, JIRA-12", rule="leak-at-exit", image="app*.exe",
        frame="app!Cache::*", heap="process-heap", max_bytes=4096, expires=datetime.date(2025, 12, 31),
    )


@pytest.mark.parametrize("text", ["", "# nothing\n", "suppressions:\n", "suppressions: []\n", "[]\n"])
def test_empty_files_mean_no_suppressions(text):
    assert parse_suppressions(text, "s.yaml") == []


def test_errors_are_collected_and_located():
    msgs = errors_of(
        "suppressions:\n"
        "  - rule: ''\n"  # 2: empty pattern
        "    reason: r\n"
        "  - image: app.exe\n"  # 4: no reason
        "  - reason: hides everything\n"  # 5: no pattern
        "  - rule: x\n"
        "    reason: r\n"
        "    imgae: app.exe\n"  # 8: typo
        "  - rule: x\n"
        "    reason: r\n"
        "    max_bytes: lots\n"  # 11: bad size
        "    expires: someday\n"  # 12: bad date
        "  - rule: x\n"
        "    frame:\n"  # 14: null pattern
        "    reason: '  '\n"  # 15: blank reason
    )
    assert msgs[0] == "s.yaml:2:11: empty pattern 'rule': give a value or remove the key"
    assert "s.yaml:4:5: a suppression needs a 'reason'" in msgs
    assert any(m.startswith("s.yaml:5:5: a suppression needs at least one of rule, image, frame, heap") for m in msgs)
    assert "s.yaml:8:5: unknown key 'imgae'; did you mean 'image'?" in msgs
    assert any(m.startswith("s.yaml:11:16: max_bytes: not a size: 'lots'") for m in msgs)
    assert "s.yaml:12:14: expires: not a date 'someday' (write YYYY-MM-DD)" in msgs
    assert any(m.startswith("s.yaml:14:11: empty pattern 'frame'") for m in msgs)
    assert any(m.startswith("s.yaml:15:13: empty reason") for m in msgs)
    assert len(msgs) == 8


def test_yaml_syntax_error_and_wrong_shapes_are_located():
    assert errors_of("suppressions:\n  - rule: [unclosed\n")[0].startswith("s.yaml:3:1: invalid YAML")
    assert errors_of("suppressions: " + "[" * 5000 + "]" * 5000 + "\n") == ["s.yaml: invalid YAML: nested too deeply"]
    assert errors_of("other: 1\n")[0] == "s.yaml:1:1: unknown top-level key 'other'; expected 'suppressions'"
    assert errors_of("suppressions: 3\n")[0] == "s.yaml:1:15: 'suppressions' must be a list of entries"
    assert errors_of("- just a string\n")[0].startswith("s.yaml:1:3: a suppression must be a mapping")
    assert errors_of("- rule: [a, b]\n  reason: r\n")[0] == "s.yaml:1:9: 'rule' must be a single value, not a list or mapping"


def test_unsafe_yaml_tags_are_never_constructed(tmp_path):
    marker = tmp_path / "pwned"
    text = f"- rule: !!python/object/apply:os.system ['touch {marker}']\n  reason: r\n"
    with pytest.raises(HeaplintError):
        parse_suppressions(text, "s.yaml")  # a sequence where a pattern belongs: rejected, never run
    assert not marker.exists()
    (s,) = parse_suppressions("- rule: !!python/name:os.system HL001\n  reason: !custom r\n", "s.yaml")
    assert (s.rule, s.reason) == ("HL001", "r")  # tags are ignored; values stay text


def test_load_missing_file(tmp_path):
    with pytest.raises(RuleError) as err:
        load_suppressions(str(tmp_path / "nope.yaml"))
    assert "suppressions file not found" in str(err.value)


def _finding(**kw) -> Finding:
    base = dict(rule_id="HL001", rule_name="leak-at-exit", severity=Severity.ERROR, message="m", trace="t.etl",
                pid=1, image="C:\\Apps\\App.EXE", heap_label="process-heap", sizes=(100,),
                stack=("App!Cache::Insert+0x2a", "App!main+0x10"))
    base.update(kw)
    return Finding(**base)


@pytest.mark.parametrize(
    "entry, matches",
    [
        (dict(rule="HL001"), True),
        (dict(rule="leak-at-exit"), True),
        (dict(rule="HL002"), False),
        (dict(rule="leak-*"), False),  # rules match exactly
        (dict(image="app.exe"), True),  # base name, case-insensitive
        (dict(image="c:/apps/*"), True),  # full path, either slash
        (dict(image="other.exe"), False),
        (dict(frame="app!cache::*"), True),  # any frame, case-insensitive
        (dict(frame="*!main+*"), True),
        (dict(frame="ntdll!*"), False),
        (dict(heap="process-heap"), True),
        (dict(heap="heap#*"), False),
        (dict(rule="HL001", max_bytes=100), True),
        (dict(rule="HL001", max_bytes=99), False),
        (dict(rule="HL001", image="app.exe", frame="nope!*"), False),  # all given fields must match
    ],
)
def test_matching(entry, matches):
    assert Suppression(source="s:1", reason="r", **entry).matches(_finding()) is matches


def test_frame_pattern_never_matches_a_finding_without_stack():
    assert not Suppression(source="s:1", reason="r", frame="*").matches(_finding(stack=None))


def test_apply_moves_findings_counts_usage_and_warns_about_unused():
    result = sample_result()
    entries = parse_suppressions(
        "- rule: HL001\n  image: svc.exe\n  reason: svc leak is known\n"
        "- rule: HL010\n  reason: churn accepted\n"
        "- image: nothing.exe\n  reason: stale\n",
        "sup.yaml",
    )
    out = apply_suppressions(result, entries, today=TODAY)
    assert [f.rule_id for f in out.findings] == ["HL001", "HL002", "HL020"]
    assert [(s.finding.rule_id, s.source, s.reason) for s in out.suppressed] == [
        ("HL010", "sup.yaml:4", "churn accepted"),
        ("HL001", "sup.yaml:1", "svc leak is known"),
    ]
    usage = {u.source: (u.findings, u.bytes, u.unused) for u in out.suppressions}
    assert usage == {"sup.yaml:1": (1, 640, False), "sup.yaml:4": (1, 0, False), "sup.yaml:6": (0, 0, True)}
    assert out.warnings == ["sup.yaml:6: suppression matched no finding; remove it if the problem is fixed"]
    assert out.errors == [] and out.exit_status == 1
    assert len(result.findings) == 5  # the input is not modified


def test_expired_suppressions_stop_applying_and_can_be_errors():
    result = sample_result()
    entries = parse_suppressions("- rule: HL001\n  reason: old\n  expires: 2025-05-31\n", "sup.yaml")
    assert apply_suppressions(result, entries, today=datetime.date(2025, 5, 31)).suppressed  # still valid that day
    out = apply_suppressions(result, entries, today=TODAY)
    assert out.suppressed == [] and out.suppressions[0].expired
    assert out.warnings == ["sup.yaml:1: suppression expired on 2025-05-31 and no longer applies (old)"]
    strict = apply_suppressions(result, entries, today=TODAY, fail_on_expired=True)
    assert strict.errors == ["sup.yaml:1: suppression expired on 2025-05-31 and no longer applies (old)"]
    assert strict.exit_status == 2


def test_reports_list_suppressions():
    entries = parse_suppressions("- rule: HL010\n  reason: churn <accepted>\n- rule: HLX\n  reason: unused one\n", "sup.yaml")
    out = apply_suppressions(sample_result(), entries, today=TODAY)
    doc = json.loads(get_formatter("json").render(out, ReportOptions()))
    assert doc["suppressions"][0]["findings"] == 1 and doc["suppressions"][1]["unused"] is True
    assert doc["suppressed"][0]["suppressed_by"] == {"source": "sup.yaml:1", "reason": "churn <accepted>"}
    sarif = json.loads(get_formatter("sarif").render(out, ReportOptions()))
    suppressed = [r for r in sarif["runs"][0]["results"] if "suppressions" in r]
    assert suppressed[0]["suppressions"] == [{"kind": "external", "status": "accepted", "justification": "churn <accepted>"}]
    text = get_formatter("text").render(out, ReportOptions()).decode()
    assert "suppression sup.yaml:1: hid 1 finding (churn <accepted>)" in text
    assert "suppression sup.yaml:3: unused (unused one)" in text
    page = get_formatter("html").render(out, ReportOptions()).decode()
    assert "churn &lt;accepted&gt;" in page


_PATTERN = st.text(alphabet="ab*?.!:", min_size=1, max_size=6)


@given(rule=st.sampled_from(["HL001", "x"]), image=_PATTERN, frame=_PATTERN)
def test_matches_agrees_with_a_reference_model(rule, image, frame):
    import fnmatch

    f = _finding(image="a.b", stack=("a!b", "ab"))
    got = Suppression(source="s:1", reason="r", rule=rule, image=image, frame=frame).matches(f)
    expected = (
        rule in ("HL001", "leak-at-exit")
        and fnmatch.fnmatchcase("a.b", image.casefold())
        and any(fnmatch.fnmatchcase(fr, frame.casefold()) for fr in ("a!b", "ab"))
    )
    assert got == expected
