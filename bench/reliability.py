"""Reliability figures: crash after every backend operation then resume, and random transient
fault schedules, for both playbooks on every Exchange version the fakes model.

    python bench/reliability.py [crash] [faults] [--runs 20]

``crash``: per (playbook, version), the crash points (one per operation that takes effect),
how many converged to the uninterrupted end state, mail items lost, objects touched outside the
scope. ``faults``: ``--runs`` applies per case, each under a random schedule (seeds 0..runs-1)
failing 20% of every operation kind's calls; faults injected and retries, per case and per
operation kind. The checks are those of tests/test_crash_resume.py and
tests/test_fault_schedules.py (the same code, in tests/crash_support.py and
tests/schedule_support.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from crash_support import every_case, sweep, uninterrupted
from schedule_support import MAX_IN_A_ROW, RATE, run_with_random_faults


def crash_table() -> bool:
    print(
        "| playbook | version | crash points | refused, then a fresh apply | resumed | converged "
        "| mail items lost | objects touched outside the scope | seconds |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    total, ok = Counter[str](), True
    for case in every_case():
        with tempfile.TemporaryDirectory() as work:
            result = sweep(case, Path(work))
        ok &= not result.failures
        print(
            f"| {case.playbook} | {case.version} | {result.crash_points} | "
            f"{len(result.refused)} | {len(result.resumed)} | {result.converged} | "
            f"{result.lost} | {result.outside} | {result.seconds:.1f} |",
            flush=True,
        )
        total.update(
            points=result.crash_points,
            converged=result.converged,
            lost=result.lost,
            outside=result.outside,
        )
        for failure in result.failures[:5]:
            print(f"  FAILED: {failure}", file=sys.stderr)
    print(
        f"| **all** | | **{total['points']}** | | | **{total['converged']}** | "
        f"**{total['lost']}** | **{total['outside']}** | |\n"
    )
    return ok


def fault_table(runs: int) -> bool:
    print(
        f"{runs} runs per case, {RATE:.0%} of every operation kind's calls fail "
        f"(at most {MAX_IN_A_ROW} in a row), seeds 0..{runs - 1}\n"
    )
    print(
        "| playbook | version | runs | converged | operations (mean) | faults injected "
        "| retries | most retries in one run |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    injected, retried, ok = Counter[str](), Counter[str](), True
    for case in every_case():
        doc = case.document()
        with tempfile.TemporaryDirectory() as work:
            reference = uninterrupted(case, doc, Path(work))
        converged, operations, most = 0, 0, 0
        case_injected, case_retried = 0, 0
        for seed in range(runs):
            with tempfile.TemporaryDirectory() as work:
                run = run_with_random_faults(case, doc, reference, seed, Path(work))
            converged += run.verdict.converged and run.retried == run.injected
            operations += run.operations
            injected.update(run.injected)
            retried.update(run.retried)
            case_injected += run.injected.total()
            case_retried += run.retried.total()
            most = max(most, run.retried.total())
        ok &= converged == runs
        print(
            f"| {case.playbook} | {case.version} | {runs} | {converged} | "
            f"{operations / runs:.0f} | {case_injected} | {case_retried} | {most} |",
            flush=True,
        )
    print("\n| operation | faults injected | retries |\n| --- | ---: | ---: |")
    for operation in sorted(injected | retried):
        print(f"| {operation} | {injected[operation]} | {retried[operation]} |")
    print(f"| **all** | **{injected.total()}** | **{retried.total()}** |\n")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", metavar="crash|faults", default=[])
    parser.add_argument("--runs", type=int, default=20, help="fault-schedule runs per case")
    args = parser.parse_args()
    parts = args.parts or ["crash", "faults"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    os.fsync = lambda fd: None  # as in the tests: no fault here is a power loss
    ok = True
    started = time.perf_counter()
    if "crash" in parts:
        ok &= crash_table()
    if "faults" in parts:
        ok &= fault_table(args.runs)
    print(f"{time.perf_counter() - started:.0f} s in all; {'all converged' if ok else 'FAILURES'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
