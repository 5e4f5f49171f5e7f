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


# --- destinations that are not plain files (found by fuzzing the CLI) ------------


def test_a_directory_is_a_located_error_not_a_traceback(tmp_path, capsys):
    from heaplint.engine.cli import main
    from heaplint.engine.errors import UsageError

    with pytest.raises(UsageError, match="is a directory"):
        write_atomic(str(tmp_path), b"x")
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"format":"heaplint-trace","version":1,"time_unit":"ns"}\n')
    for argv in (["stats", "-o", str(tmp_path), str(trace)],
                 ["check", "-q", "--format", "json", "-o", str(tmp_path), str(trace)],
                 ["baseline", "create", str(trace), "-o", str(tmp_path)]):  # fmt: skip
        assert main(argv) == 2, argv
        assert capsys.readouterr().err.strip().endswith(f"{tmp_path}: cannot write: is a directory")


def test_a_named_pipe_is_written_in_place_not_replaced(tmp_path):
    # renaming over a FIFO or a device (-o /dev/null) replaced it with a plain file
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_atomic(str(fifo), b"report")
        assert os.read(reader, 100) == b"report"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_a_symlink_keeps_pointing_at_the_replaced_file(tmp_path):
    real = tmp_path / "real.json"
    real.write_bytes(b"old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_atomic(str(link), b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"


def test_a_full_disk_is_a_located_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    import errno

    from heaplint.engine.errors import UsageError

    target = tmp_path / "r.json"
    target.write_bytes(b"old")

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(UsageError, match="cannot write: No space left on device"):
        write_atomic(str(target), b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


class _FullStream:
    """stdout on a full disk: every write fails with ENOSPC."""

    def __init__(self) -> None:
        self.buffer = self

    def write(self, data) -> int:
        import errno

        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("command", [["rules", "list"], ["rules", "explain", "HL001"], ["stats"], ["check", "-q"]])
def test_stdout_on_a_full_disk_is_exit_2(tmp_path, capsys, monkeypatch, command):
    import sys

    from heaplint.engine.cli import main

    trace = tmp_path / "t.jsonl"
    trace.write_text('{"format":"heaplint-trace","version":1,"time_unit":"ns"}\n')
    argv = command + ([str(trace)] if command[0] in ("stats", "check") else [])
    monkeypatch.setattr(sys, "stdout", _FullStream())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == "<stdout>: cannot write: No space left on device\n", err
