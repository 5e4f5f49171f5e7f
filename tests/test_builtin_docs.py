"""docs/builtin-rules.md is generated from the rule files and states the
measured precision and recall."""

from __future__ import annotations

import re
from pathlib import Path

from corpus_measure import BEGIN as MEASURED_BEGIN
from corpus_measure import END as MEASURED_END
from heaplint.engine.cli import main
from heaplint.rules.docgen import END, RULES_BEGIN, replace_section, rules_reference
from heaplint.rules.ruleset import load_ruleset

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "builtin-rules.md"
REGENERATE = "heaplint rules doc --no-config --update docs/builtin-rules.md"


def test_reference_is_current():
    doc = DOC.read_text(encoding="utf-8")
    assert RULES_BEGIN in doc, f"docs/builtin-rules.md lacks the generated section; run: {REGENERATE}"
    current = doc.split(RULES_BEGIN, 1)[1].split(END, 1)[0].strip()
    expected = rules_reference(load_ruleset(use_config=False).rules, title=None).strip()
    assert current == expected, f"docs/builtin-rules.md is out of date with builtin_rules/; run: {REGENERATE}"


def test_update_rewrites_only_the_generated_section(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text(f"# Mine\n\nkept\n\n{RULES_BEGIN}\nSTALE-SECTION-TOKEN\n{END}\n\ntail kept\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["rules", "doc", "--no-config", "--update", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Mine\n\nkept\n\n") and text.endswith(f"{END}\n\ntail kept\n")
    assert "STALE-SECTION-TOKEN" not in text and "## HL003 unbounded-heap-growth" in text
    assert replace_section(text, RULES_BEGIN, "x").count("## HL003") == 0
    bare = tmp_path / "bare.md"
    bare.write_text("no markers\n", encoding="utf-8")
    assert main(["rules", "doc", "--no-config", "--update", str(bare)]) == 2
    assert bare.read_text(encoding="utf-8") == "no markers\n"


def test_update_of_a_missing_or_binary_page_is_a_plain_message(tmp_path, capsys):
    binary = tmp_path / "page.md"
    binary.write_bytes(b"\xff\xfe not text")
    for page, message in ((tmp_path / "missing.md", "cannot read: No such file or directory"),
                          (tmp_path, "cannot read: Is a directory"),
                          (binary, "not UTF-8 text: invalid start byte")):  # fmt: skip
        assert main(["rules", "doc", "--no-config", "--update", str(page)]) == 2
        assert capsys.readouterr().err == f"{page}: {message}\n"


def test_measured_precision_and_recall_are_stated():
    doc = DOC.read_text(encoding="utf-8")
    section = doc.split(MEASURED_BEGIN, 1)[1].split(MEASURED_END, 1)[0]
    m = re.search(r"Measured with `(python tests/corpus_measure\.py [^`]+)`: (\d+) traces", section)
    assert m, "the measured section must name the command that measured it"
    assert int(m.group(2)) > 66, "the documented corpus should be larger than the test suite's"
    rows = [line for line in section.splitlines() if line.startswith("| HL")]
    assert [r.split()[1] for r in rows] == [f"HL{i:03d}" for i in range(1, 15)]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 7 and all(re.fullmatch(r"\d+|\d\.\d\d|n/a", c) for c in cells[1:]), row
