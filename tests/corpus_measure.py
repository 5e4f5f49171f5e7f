"""Precision and recall of the built-in rules on a labelled synthetic corpus.

The corpus is :func:`heaplint.engine.synth_presets.corpus_specs`: six healthy
workloads (caches, sawtooth, warm-up, LFH churn, attach mode, lossy capture),
each as it is and with each defect of ``heaplint synth`` injected alone.  Every
trace is generated in memory and replayed with the built-in rules under a
profile (``default`` unless told otherwise); findings are matched to the truth.

Matching.  An injected defect has *occurrences* (the leak has one: the set of
its leaked blocks).  A finding *matches* an occurrence when its rule is one of
the defect's ``rules``, its process is the defect's, its heap (when it has one)
is the occurrence's heap (or the owner heap of a wrong-heap free), and either
its addresses include the occurrence's (old, new, overlapped or leaked)
addresses, or the finding carries no addresses (heap and window rules) and
starts inside the occurrence's time range, or the defect is identified by its
heap (a destroyed arena, a realloc chain).

* recall of a rule = matched occurrences / occurrences of defects whose
  ``rule`` (the rule meant for them) it is; occurrences whose events fell into a
  lost-events burst cannot be seen and are left out;
* precision of a rule = findings that match some occurrence / its findings, over
  all findings and over findings at warning or error (the ones that gate CI).
  HL013 (incomplete trace) is labelled by the truth's coverage: it is right
  exactly on traces that lost events.  A few defects rightly trigger a second
  rule too (``SECONDARY``); those findings are true but not counted as recall.

Run it on a larger corpus than the test suite's (the docs state its output):

    python tests/corpus_measure.py --events 20000 --seeds 0,1,2

``--update-doc docs/builtin-rules.md`` rewrites the measured table there.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from heaplint.engine.findings import Finding, Severity
from heaplint.engine.synth import synthesize
from heaplint.engine.synth_presets import corpus_specs
from heaplint.rules.ruleset import RuleSet, load_ruleset
from heaplint.rules.runtime import run_events
from heaplint.rules.sink import MAX_ADDRESSES

#: rules identified by their heap rather than by block addresses
BY_HEAP = {"destroy-live", "realloc-chain", "slowpath-storm"}
#: defects that also, rightly, trigger another rule: such findings are not false
#: ones, but they do not count towards that rule's recall.  The slow-path storm
#: grows its buffer by ~50 moving reallocs that copy ~50 MiB: a real realloc chain.
SECONDARY = {"slowpath-storm": ("HL010",)}
#: time slack for findings made after the defect's last event (a chain is judged at its free)
SLACK_NS = 5_000_000_000


@dataclass
class Occurrence:
    """One labelled place a rule should report."""

    defect: dict[str, Any]
    pid: int
    heaps: set[int]
    addresses: set[int]
    first_ns: int
    last_ns: int
    matched: bool = False


@dataclass
class CaseResult:
    """Findings and labels of one corpus trace."""

    name: str
    healthy: bool
    findings: list[Finding]
    occurrences: list[Occurrence]
    unseen: list[Occurrence]  # occurrences inside a lost-events burst
    lossy: bool
    false_findings: list[Finding] = field(default_factory=list)


def _int(x: Any) -> int:
    return int(x, 16) if isinstance(x, str) else int(x)


def occurrences(truth: dict[str, Any]) -> tuple[list[Occurrence], list[Occurrence]]:
    """The occurrences of every injected defect: (visible, lost with the events)."""
    lost = truth["coverage"].get("lost", [])
    seen, unseen = [], []
    for d in truth["defects"]:
        pid = d["pid"]
        occs = d.get("occurrences") or []
        if not occs:  # the leak: one occurrence made of all its blocks
            o = Occurrence(d, pid, {_int(d["heap"])}, {_int(a) for a in d["addresses"]},
                           d["first_time_ns"], d["last_time_ns"])
            seen.append(o)
            continue
        for occ in occs:
            addrs = {_int(occ[k]) for k in ("address", "new_address", "overlapped") if k in occ}
            heaps = {_int(occ[k]) for k in ("heap", "owner_heap") if k in occ} | {_int(d["heap"])}
            t0 = occ["time_ns"]
            o = Occurrence(d, pid, heaps, addrs, t0, occ.get("last_time_ns", t0))
            hidden = any(w["pid"] == pid and w["first_time_ns"] <= o.last_ns and o.first_ns <= w["last_time_ns"]
                         for w in lost)
            (unseen if hidden else seen).append(o)
    return seen, unseen


def matches(f: Finding, o: Occurrence) -> bool:
    """Does finding ``f`` report occurrence ``o`` (see the module docstring)?"""
    d = o.defect
    if (f.rule_id not in d["rules"] and f.rule_id not in SECONDARY.get(d["kind"], ())) or f.pid != o.pid:
        return False
    if f.heap is not None and f.heap not in o.heaps:
        return False
    if d["kind"] in ("leak", "destroy-live"):
        return not f.addresses or bool(o.addresses.intersection(f.addresses)) or d["kind"] == "destroy-live"
    if o.addresses.intersection(f.addresses):
        return True
    # window and heap findings carry no addresses, and a finding that merged many
    # matches lists only the first MAX_ADDRESSES: then its time span must cover it
    if f.addresses and len(f.addresses) < MAX_ADDRESSES and d["kind"] not in BY_HEAP:
        return False
    first = f.first_time if f.first_time is not None else 0
    last = f.last_time if f.last_time is not None else first
    return first <= o.last_ns + SLACK_NS and last >= o.first_ns


def profile_ruleset(profile: str = "default") -> RuleSet:
    """The built-in rules configured by a built-in profile (no project config)."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "heaplint.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(f"extends: {profile}\n")
        return load_ruleset(config_path=cfg, use_config=False)


def run_case(ruleset: RuleSet, name: str, spec: Any) -> CaseResult:
    """Generate one corpus trace in memory, replay it and label its findings."""
    trace = synthesize(spec)
    findings, _ = run_events(ruleset.enabled, trace.events(), trace.info, trace.stacks)
    truth = trace.truth
    seen, unseen = occurrences(truth)
    lossy = truth["coverage"]["events_lost"] > 0
    result = CaseResult(name, truth["healthy"], findings, seen, unseen, lossy)
    for f in findings:
        hit = False
        if f.rule_id == "HL013":
            hit = lossy
        for o in seen:
            if matches(f, o):
                o.matched = hit = True
        if not hit:
            result.false_findings.append(f)
    return result


def corpus(events: int, seeds: Iterable[int]) -> list[tuple[str, Any]]:
    """The labelled corpus for each seed (names carry the seed when several)."""
    seeds = list(seeds)
    out = []
    for seed in seeds:
        for name, spec in corpus_specs(events=events, seed=seed):
            out.append((f"{name}@{seed}" if len(seeds) > 1 else name, spec))
    return out


@dataclass
class RuleScore:
    rule: str
    occurrences: int = 0
    recalled: int = 0
    findings: int = 0
    true_findings: int = 0
    gating: int = 0
    true_gating: int = 0
    healthy_findings: int = 0

    @staticmethod
    def ratio(a: int, b: int) -> str:
        return f"{a / b:.2f}" if b else "n/a"


def score(results: list[CaseResult], rule_ids: Iterable[str]) -> dict[str, RuleScore]:
    """Per-rule recall and precision over the results."""
    scores = {r: RuleScore(r) for r in rule_ids}
    for res in results:
        for o in res.occurrences:
            for rid in o.defect["rules"]:
                s = scores.setdefault(rid, RuleScore(rid))
                s.occurrences += 1
                s.recalled += any(f.rule_id == rid and matches(f, o) for f in res.findings)
        if res.lossy:
            s = scores.setdefault("HL013", RuleScore("HL013"))
            s.occurrences += 1
            s.recalled += any(f.rule_id == "HL013" for f in res.findings)
        false = {id(f) for f in res.false_findings}
        for f in res.findings:
            s = scores.setdefault(f.rule_id, RuleScore(f.rule_id))
            s.findings += 1
            s.true_findings += id(f) not in false
            if f.severity >= Severity.WARNING:
                s.gating += 1
                s.true_gating += id(f) not in false
            s.healthy_findings += res.healthy
    return scores


def table(scores: dict[str, RuleScore], names: dict[str, str]) -> str:
    """Markdown table of the scores."""
    rows = ["| rule | labelled occurrences | recall | findings | precision | warning+ findings | precision (warning+) |",
            "|---|---|---|---|---|---|---|"]
    for rid in sorted(scores):
        s = scores[rid]
        rows.append(f"| {rid} {names.get(rid, '')} | {s.occurrences} | {RuleScore.ratio(s.recalled, s.occurrences)} "
                    f"| {s.findings} | {RuleScore.ratio(s.true_findings, s.findings)} | {s.gating} "
                    f"| {RuleScore.ratio(s.true_gating, s.gating)} |")
    return "\n".join(rows) + "\n"


BEGIN = "<!-- BEGIN MEASURED: python tests/corpus_measure.py -->"
END = "<!-- END MEASURED -->"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=20000, help="events per trace (default 20000)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--profile", default="default", help="built-in profile (default: default)")
    p.add_argument("--update-doc", metavar="FILE", help="rewrite the measured section of this Markdown file")
    p.add_argument("-v", "--verbose", action="store_true", help="list missed occurrences and false findings")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    ruleset = profile_ruleset(args.profile)
    names = {r.id: r.spec.name for r in ruleset.rules}
    t0 = time.monotonic()
    cases = corpus(args.events, seeds)
    results = []
    for name, spec in cases:
        res = run_case(ruleset, name, spec)
        results.append(res)
        if args.verbose:
            for o in res.occurrences:
                for rid in o.defect["rules"]:
                    if not any(f.rule_id == rid and matches(f, o) for f in res.findings):
                        print(f"MISSED {name}: {rid} {o.defect['kind']} pid {o.pid}", file=sys.stderr)
            for f in res.false_findings:
                print(f"FALSE  {name}: {f.rule_id} {f.severity.label} {f.message}", file=sys.stderr)
    elapsed = time.monotonic() - t0
    scores = score(results, [r.id for r in ruleset.enabled])
    healthy = [r for r in results if r.healthy]
    gating_on_healthy = sum(1 for r in healthy for f in r.findings if f.severity >= Severity.WARNING)
    cmd = f"python tests/corpus_measure.py --events {args.events} --seeds {','.join(map(str, seeds))}" + (
        f" --profile {args.profile}" if args.profile != "default" else "")
    text = (f"Measured with `{cmd}`: {len(results)} traces ({len(healthy)} healthy, "
            f"{len(results) - len(healthy)} with one injected defect kind each), "
            f"{sum(len(r.unseen) for r in results)} occurrences lost with the events of a lossy capture left out; "
            f"warning or error findings on healthy traces: {gating_on_healthy}.\n\n" + table(scores, names))
    sys.stdout.write(text)
    print(f"({elapsed:.1f} s)", file=sys.stderr)
    if args.update_doc:
        with open(args.update_doc, encoding="utf-8") as f:
            doc = f.read()
        if BEGIN not in doc or END not in doc:
            print(f"{args.update_doc}: no measured section ({BEGIN} ... {END})", file=sys.stderr)
            return 2
        head, rest = doc.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        with open(args.update_doc, "w", encoding="utf-8") as f:
            f.write(head + BEGIN + "\n\n" + text + "\n" + END + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
