"""Format detection for the text exports (issue 6 section 4): content, not file names."""

from __future__ import annotations

import gzip

import pytest

from heaplint.engine.errors import TraceError
from heaplint.engine.readers import available_readers, detect_format
from heaplint.engine.readers.wpa import WpaCsvReader
from heaplint.engine.readers.xperf import XperfReader
from helpers_text_exports import DATA, cli, read_events

XPERF_FILES = sorted(p.name for p in DATA.glob("xperf_*.txt"))
WPA_FILES = sorted(p.name for p in DATA.glob("wpa_*.csv"))


@pytest.mark.parametrize("name", XPERF_FILES)
def test_xperf_dumps_are_detected_as_xperf(name):
    head = (DATA / name).read_bytes()[:65536]
    assert XperfReader.sniff(head) and not WpaCsvReader.sniff(head)
    assert detect_format(head, name) == "xperf"


@pytest.mark.parametrize("name", WPA_FILES)
def test_wpa_exports_are_detected_as_wpa_csv(name):
    head = (DATA / name).read_bytes()[:65536]
    assert WpaCsvReader.sniff(head) and not XperfReader.sniff(head)
    assert detect_format(head, name) == "wpa-csv"


def test_detection_ignores_the_file_name_and_sees_through_gzip(tmp_path):
    p = tmp_path / "trace.etl"  # a misleading extension
    p.write_bytes(gzip.compress((DATA / "wpa_basic.csv").read_bytes()))
    events, reader = read_events(p)
    assert reader.name == "wpa-csv" and len(events) == 6


def test_wpa_header_with_bom_and_excel_separator_line(tmp_path):
    p = tmp_path / "excel.csv"
    p.write_bytes(b"\xef\xbb\xbfsep=,\r\n" + (DATA / "wpa_basic.csv").read_bytes())
    events, reader = read_events(p)
    ref, _ = read_events(DATA / "wpa_basic.csv")
    assert reader.name == "wpa-csv"
    assert [e._replace(line=0) for e in events] == [e._replace(line=0) for e in ref]
    assert events[1].line == 3  # the header is on line 2


def test_unrecognised_content_names_the_supported_formats(tmp_path, capsys):
    p = tmp_path / "notes.txt"
    p.write_text("shopping list\nmilk, eggs\n")
    with pytest.raises(TraceError) as exc:
        detect_format(p.read_bytes(), str(p))
    for name in available_readers():
        assert name in exc.value.message
    assert "--input-format" in exc.value.message
    assert cli(["stats", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{p}:1: unrecognised trace format; supported formats: ")
    assert "xperf" in err and "wpa-csv" in err and "Traceback" not in err


def test_empty_file_is_a_clear_error(tmp_path, capsys):
    p = tmp_path / "empty.txt"
    p.write_bytes(b"")
    assert cli(["stats", str(p)]) == 2
    assert "empty file" in capsys.readouterr().err


def test_input_format_overrides_detection(tmp_path, capsys):
    # a dump behind more chatter than the sniffing window holds is not detected...
    p = tmp_path / "chatty.txt"
    p.write_text("xperf: processing trace...\n" * 3000 + (DATA / "xperf_basic.txt").read_text())
    assert cli(["stats", str(p)]) == 2
    assert "unrecognised trace format" in capsys.readouterr().err
    # ...but reads with --input-format
    out = tmp_path / "stats.json"
    assert cli(["stats", "--input-format", "xperf", "--format", "json", "-o", str(out), str(p)]) == 0
    assert '"format": "xperf"' in out.read_text()
    events, _ = read_events(p, "xperf")
    assert len(events) == 9


def test_forcing_the_wrong_text_format_fails_cleanly(capsys):
    path = str(DATA / "xperf_basic.txt")
    assert cli(["stats", "--input-format", "wpa-csv", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:1: WPA Heap Allocations header row: no columns for the lifetime Type")
    assert "columns seen: 'BeginHeader'" in err
    assert "Traceback" not in err


def test_unknown_input_format_name_lists_the_known_ones(capsys):
    assert cli(["stats", "--input-format", "xperff", str(DATA / "xperf_basic.txt")]) == 2
    err = capsys.readouterr().err
    assert "unknown input format 'xperff'" in err and "xperf" in err and "wpa-csv" in err
