"""Errors with --jobs: a bad record met by a worker is the same located error
as with one process (exit 2), a worker that dies or hits a bug is reported as
a bug (never a hang), and Ctrl-C stops the workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from jobs_support import ROOT, give_up_or_sleep, record, rule_set, square_or_die, square_or_fail, write_lines

from heaplint.engine import analyze
from heaplint.engine.cli import main
from heaplint.engine.errors import HeaplintError
from heaplint.engine.parallel import WorkerCrash, default_start_method, run_pool

BAD = b'{"kind":"alloc","time":%d,"pid":%d,"heap":"0xZZ","address":"0x1","size":1}'


def two_processes(tmp_path, bad: dict[int, bytes], name: str = "t.jsonl") -> str:
    """Records of pids 1 and 2 alternating; ``bad`` replaces record i."""
    body = [record("alloc", i, 1 + i % 2, heap="0x10", address=f"0x{0x1000 + 64 * i:x}", size=8) for i in range(40)]
    for i, line in bad.items():
        body[i] = line
    return write_lines(tmp_path / name, body)


@pytest.fixture(scope="module")
def rules():
    return rule_set()


@pytest.mark.parametrize("bad", [
    {11: BAD % (11, 2)},  # claimed for pid 2 from its bytes: only pid 2's partition decodes it
    {10: BAD % (10, 1)},  # pid 1's partition
    {12: b"{not json"},  # no pid to claim: every partition decodes it
    {30: BAD % (30, 1), 13: BAD % (13, 2)},  # two partitions fail: the first line wins
])
def test_bad_record_in_a_partition_is_the_same_error(tmp_path, rules, bad):
    path = two_processes(tmp_path, bad)
    whole = analyze([path], ruleset=rules)
    split = analyze([path], ruleset=rules, jobs=2)
    assert whole.errors and split.errors == whole.errors and split.exit_status == 2
    assert f"{path}:{min(bad) + 2}:" in whole.errors[0]


def test_bad_traces_among_several(tmp_path, rules):
    good = two_processes(tmp_path, {}, "good.jsonl")
    broken = two_processes(tmp_path, {5: BAD % (5, 2)}, "broken.jsonl")
    traces = [broken, good, str(tmp_path / "missing.jsonl"), good]
    whole = analyze(traces, ruleset=rules)
    split = analyze(traces, ruleset=rules, jobs=2)
    assert len(whole.errors) == 2 and split.errors == whole.errors
    assert [t.path for t in split.traces] == [t.path for t in whole.traces] == [good, good]


def test_cli_exit_status_and_message(tmp_path, capsys):
    path = two_processes(tmp_path, {21: BAD % (21, 2)})
    out = []
    for jobs in ("1", "2"):
        status = main(["check", path, "--no-builtin", "--no-config", "--jobs", jobs, "-o", str(tmp_path / "r.txt")])
        out.append((status, capsys.readouterr().err))
    assert out[0] == out[1] and out[0][0] == 2 and f"{path}:23:" in out[0][1]
    status = main(["stats", path, "--jobs", "2"])
    assert status == 2 and f"{path}:23:" in capsys.readouterr().err


def test_a_worker_that_dies_is_reported_not_waited_for():
    start = time.monotonic()
    with pytest.raises(WorkerCrash) as err:
        run_pool(square_or_die, [1, 2, 3, 4], 2, default_start_method())
    assert not isinstance(err.value, HeaplintError)  # the CLI reports it as a bug: exit 3
    assert time.monotonic() - start < 60
    assert run_pool(square_or_die, [1, 2, 4], 2, default_start_method())[0] == [1, 4, 16]


def test_a_bug_in_a_worker_propagates():
    with pytest.raises(ZeroDivisionError):
        run_pool(square_or_fail, [1, 2, 3], 2, default_start_method())


def test_unneeded_items_are_not_waited_for(tmp_path):
    """Once a partition gives up, its siblings' results are not needed (the
    trace is replayed whole): run_pool stops their workers instead of
    waiting for them.  (Were it to wait, the sleeping item would say "slept".)"""
    pid_file = str(tmp_path / "pids")
    results, _ = run_pool(give_up_or_sleep, [("give up", pid_file), ("sleep", pid_file)], 2, default_start_method(),
                          unneeded=lambda i, r: [1] if r == "gave up" else [])
    assert results == ["gave up", None]
    for pid in map(int, open(pid_file).read().split()):
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"worker {pid} still running"


def test_ctrl_c_stops_the_workers(tmp_path):
    pid_file = tmp_path / "pids"
    script = textwrap.dedent(f"""
        import signal, sys
        # a terminal's Ctrl-C: Python ignores SIGINT when its parent did (a
        # shell's background job), so set the handler a foreground run has
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from jobs_support import sleep_forever
        from heaplint.engine.parallel import default_start_method, run_pool
        try:
            run_pool(sleep_forever, [{str(pid_file)!r}] * 2, 2, default_start_method())
        except KeyboardInterrupt:
            sys.exit(130)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if pid_file.exists() and len(pid_file.read_text().split()) == 2:
                break
            time.sleep(0.05)
        workers = [int(p) for p in pid_file.read_text().split()]
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the whole group
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err
    for pid in workers:
        assert not _alive(pid), f"worker {pid} still running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie left for init to reap counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("jobs", ["257", "100000", "-1", "two"])
def test_an_absurd_jobs_count_is_a_usage_error(tmp_path, capsys, jobs):
    # found by fuzzing: --jobs 100000 split one trace into 100000 partitions and
    # started a worker process for each until memory ran out
    trace = two_processes(tmp_path, {})
    assert main(["stats", "--jobs", jobs, trace]) == 2
    err = capsys.readouterr().err
    assert f"argument --jobs: expected a number of processes from 0 to 256 (0 = one per CPU), got '{jobs}'" in err


@pytest.mark.parametrize("corrupt", ["crc", "bad-line-then-crc"])
def test_corrupt_gzip_is_reported_as_without_jobs(tmp_path, capsys, corrupt):
    # found by fuzzing: a partition reads ahead in big blocks, so with --jobs 2 a
    # bad gzip CRC was reported at line 2, and before a bad record that --jobs 1
    # reports first; such a partition now hands the trace to a whole replay
    import gzip

    body = [record("alloc", i, 1 + i % 2, heap="0x10", address=f"0x{0x1000 + 64 * i:x}", size=8) for i in range(5000)]
    if corrupt == "bad-line-then-crc":
        body[30] = BAD % (30, 1)
    plain = write_lines(tmp_path / "t.jsonl", body)
    raw = bytearray(gzip.compress(open(plain, "rb").read()))
    raw[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    trace = tmp_path / "t.jsonl.gz"
    trace.write_bytes(bytes(raw))
    outputs = []
    for jobs in ("1", "2"):
        assert main(["check", "-q", "--no-builtin", "--jobs", jobs, str(trace)]) == 2
        outputs.append(capsys.readouterr().err)
    assert outputs[0] == outputs[1], outputs
    expected = "t.jsonl.gz:32:" if corrupt == "bad-line-then-crc" else "CRC check failed"
    assert expected in outputs[0], outputs[0]
