"""Atomic output: files get ordinary permissions and failures leave no trace."""

from __future__ import annotations

import os
import stat

import pytest

from heaplint.engine.output import atomic_output, write_atomic


def test_new_file_gets_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "report.html"
        write_atomic(str(target), b"<html></html>")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert target.read_bytes() == b"<html></html>"


def test_replaced_file_keeps_its_mode(tmp_path):
    target = tmp_path / "r.json"
    target.write_bytes(b"old")
    target.chmod(0o640)
    write_atomic(str(target), b"new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.read_bytes() == b"new"


def test_failure_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "r.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(str(target)) as f:
            f.write(b"half")
            raise RuntimeError("formatter failed")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
