"""Runs under a random transient-fault schedule (``Faults.fail_at_random``): shared by
tests/test_fault_schedules.py and bench/reliability.py."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from crash_support import Reference, Verdict, judge
from run_support import Case, Doc, apply, events, load, only_run

from remediate import Engine

RATE = 0.2  # of every call of every operation kind
MAX_IN_A_ROW = 3  # below the retry policy's 6 attempts: more is an outage (test_faults)
_OPERATION = re.compile(r"\b(?:directory|exchange)\.[a-z_]+\b")


@dataclass(frozen=True)
class ScheduledRun:
    """One apply under a random fault schedule."""

    verdict: Verdict
    operations: int  # backend calls, failed ones included
    injected: Counter[str]  # faults injected, per operation kind
    retried: Counter[str]  # step.retried records, per operation kind named in their error


def run_with_random_faults(
    case: Case, doc: Doc, reference: Reference, seed: int, state_dir: Path
) -> ScheduledRun:
    world = load(doc)
    world.faults.fail_at_random(RATE, seed, max_in_a_row=MAX_IN_A_ROW)
    result = apply(Engine(state_dir=state_dir), case, world, doc)  # stopped: judged below
    run_dir = only_run(state_dir)
    retried: Counter[str] = Counter()
    for record in events(run_dir, "step.retried"):
        named = _OPERATION.search(str(record.get("error")))
        retried[named.group(0) if named else "?"] += 1
    verdict = judge(case, doc, reference, world=world, result=result, run_dir=run_dir)
    return ScheduledRun(verdict, world.faults.count, Counter(world.faults.injected), retried)
