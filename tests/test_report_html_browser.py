"""The HTML report rendered by a real headless Chromium.

Chromium comes from the system packages (.ci/run installs it where it can);
without it these tests skip and say so.  Each test runs the browser once
(about two seconds).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from heaplint.engine.reports import ReportOptions, get_formatter
from report_sample import sample_result

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
STROKE = (0x2E, 0x6F, 0xD8)  # .live-bytes stroke colour in engine/reports/html.py
XSS = (
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">"
    "<script>document.body.setAttribute('data-pwned','script')</script>"
)


def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium found (install the 'chromium' package; .ci/run does so as root) - HTML not browser-checked")


def run_browser(tmp_path: Path, page: Path, *mode: str) -> subprocess.CompletedProcess:
    cmd = [
        browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}", *mode, page.as_uri(),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=90, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("chromium did not finish within 90 s")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return proc


def write_report(tmp_path: Path, result) -> Path:
    page = tmp_path / "report.html"
    page.write_bytes(get_formatter("html").render(result, ReportOptions()))
    return page


def test_charts_render_in_the_dom(tmp_path):
    result = sample_result()
    dom = run_browser(tmp_path, write_report(tmp_path, result), "--dump-dom").stdout.decode()
    charts = re.findall(r'<svg class="chart"', dom)
    assert len(charts) == sum(len(t.series) for t in result.traces) == 2
    paths = re.findall(r'<path class="live-bytes" data-points="(\d+)" d="([^"]+)"', dom)
    assert len(paths) == 2
    for (declared, d), series in zip(paths, [result.traces[0].series[(100, 0x5000)], result.traces[1].series[(200, 0x7000)]]):
        points = re.findall(r"[ML]([\d.]+),([\d.]+)", d)
        assert len(points) == int(declared) == len(series)
        xs = [float(x) for x, _ in points]
        assert xs == sorted(xs) and xs[-1] > xs[0]  # time runs left to right
    assert len(re.findall(r'<g class="finding-marker', dom)) == 5


def test_hostile_trace_content_stays_inert_in_a_browser(tmp_path):
    result = sample_result(hostile=True)
    first = result.traces[0].findings[0]
    result.traces[0].findings[0] = dataclasses.replace(first, image=XSS, message=XSS, stack=(XSS,))
    dom = run_browser(tmp_path, write_report(tmp_path, result), "--dump-dom").stdout.decode()
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert "data-pwned" not in body
    assert "<script" not in dom.lower() and "<img" not in dom.lower()
    assert "&lt;script&gt;document.body.setAttribute" in dom


def test_screenshot_shows_the_chart_line(tmp_path):
    shot = tmp_path / "shot.png"
    page = write_report(tmp_path, sample_result())
    run_browser(tmp_path, page, f"--screenshot={shot}", "--window-size=800,480")
    width, height, pixels = read_png(shot.read_bytes())
    assert (width, height) == (800, 480)
    # nothing else in the first screenful has the line's colour (within 20 per channel;
    # the note blue is 23 away), so these pixels are the painted SVG path
    near = sum(1 for p in pixels if all(abs(a - b) <= 20 for a, b in zip(p, STROKE)))
    assert near > 300, f"only {near} pixels of the chart line colour: the SVG did not paint"


def read_png(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Decode an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes) to RGB pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    pixels = []
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        pixels.extend(tuple(line[i:i + 3]) for i in range(0, stride, bpp))
        prev = line
    return width, height, pixels
