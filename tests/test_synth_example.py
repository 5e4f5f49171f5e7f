"""The shipped example is what examples/regenerate.sh makes, and small."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from heaplint.engine.cli import main
from synth_support import needs_writer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _synth_args() -> list[str]:
    """The arguments regenerate.sh passes to `heaplint synth`."""
    script = (EXAMPLES / "regenerate.sh").read_text().replace("\\\n", " ")
    (line,) = [ln for ln in script.splitlines() if ln.strip().startswith("$HEAPLINT synth")]
    return shlex.split(line)[2:]


def _retarget(args: list[str], tmp: Path) -> list[str]:
    out = list(args)
    for flag in ("-o", "--truth"):
        i = out.index(flag)
        out[i + 1] = str(tmp / out[i + 1])
    return out


def test_example_is_small_and_its_truth_names_the_leak() -> None:
    trace = EXAMPLES / "leaky-service.jsonl.gz"
    assert trace.stat().st_size < 300_000
    assert trace.read_bytes()[:2] == b"\x1f\x8b"
    truth = json.loads((EXAMPLES / "leaky-service.truth.json").read_text())
    assert truth["expected_rules"] == ["HL003", "HL004"]
    assert len(truth["processes"]) == 2
    (leak,) = truth["defects"]
    assert leak["kind"] == "leak" and leak["image"] == "netsvc.exe" and leak["count"] > 30


def test_truth_matches_the_generator(tmp_path: Path) -> None:
    # the truth needs no writer: compare it with the generator's own
    from heaplint.engine.synth import synthesize
    from heaplint.engine.synth_presets import build_spec
    from heaplint.engine.units import parse_duration

    args = _synth_args()

    def opt(name: str) -> str:
        return args[args.index(name) + 1]

    spec = build_spec(
        opt("--preset"),
        seed=int(opt("--seed")),
        events=int(opt("--events")),
        duration_ns=parse_duration(opt("--duration")),
    )
    shipped = json.loads((EXAMPLES / "leaky-service.truth.json").read_text())
    assert json.loads(json.dumps(synthesize(spec).truth)) == shipped


@needs_writer
def test_regenerating_gives_the_same_bytes(tmp_path: Path) -> None:
    assert main(["synth", *_retarget(_synth_args(), tmp_path)]) == 0
    for name in ("leaky-service.jsonl.gz", "leaky-service.truth.json"):
        if (tmp_path / name).read_bytes() != (EXAMPLES / name).read_bytes():
            pytest.fail(f"examples/{name} is stale: run examples/regenerate.sh")
