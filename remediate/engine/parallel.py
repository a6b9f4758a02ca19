"""A step's endpoint batches, run concurrently: a step across many servers takes as long as its
slowest server, not the sum of them all.

On real servers the batches run on threads. On a fake world (virtual time) they take turns on
its clock (``remediate.turns``): waits overlap as they would for real, and the run stays a
function of its input, so a rehearsal still predicts the apply. Either way, once a batch fails
no other batch starts, and the ones in flight are let end (their records are exact).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

from remediate.clock import Clock, SystemClock, VirtualClock
from remediate.turns import Outcome

DEFAULT_PARALLEL = 8
# More threads than this is a mistake, not a setting: one WinRM session per server at most.
MAX_PARALLEL = 256

Job = Callable[[], None]


def checked_parallel(value: object, where: str) -> int:
    """``value`` as a number of batches at a time, or ValueError saying what is expected."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PARALLEL:
        raise ValueError(
            f"{where}: expected a whole number from 1 to {MAX_PARALLEL} (1: one server at a time)"
        )
    return value


def run_batches(clock: Clock, jobs: Sequence[Job], limit: int) -> list[Outcome]:
    """Run ``jobs``, at most ``limit`` at a time; each one's outcome, in the jobs' order."""
    if limit <= 1 or len(jobs) <= 1:
        return _one_by_one(jobs)
    if isinstance(clock, VirtualClock):
        return clock.run_together(jobs, limit)
    return _on_threads(jobs, limit)


def _one_by_one(jobs: Sequence[Job]) -> list[Outcome]:
    outcomes = [Outcome() for _ in jobs]
    for job, outcome in zip(jobs, outcomes, strict=True):
        outcome.started = True
        try:
            job()
        except BaseException as error:
            outcome.error = error
            break
    return outcomes


def _on_threads(jobs: Sequence[Job], limit: int) -> list[Outcome]:
    outcomes = [Outcome() for _ in jobs]
    failed = threading.Event()

    def run(index: int) -> None:
        if failed.is_set():
            return
        outcomes[index].started = True
        try:
            jobs[index]()
        except BaseException as error:
            outcomes[index].error = error
            failed.set()
            if isinstance(error, KeyboardInterrupt):  # the stop request was noted mid-change
                SystemClock.stop_sleepers(True)

    # Leaving the pool waits for the batches in flight. A stop request (Ctrl-C reaches this
    # thread only) keeps any more from starting and cuts short the waits of those in flight,
    # which then record what took effect, as a batch on this thread would.
    try:
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="remediate-batch") as pool:
            futures = [pool.submit(run, index) for index in range(len(jobs))]
            try:
                # In short waits: a stop request is seen within one, however it arrives.
                while wait(futures, timeout=0.5).not_done:
                    pass
            except BaseException:
                failed.set()
                SystemClock.stop_sleepers(True)
                raise
    finally:
        SystemClock.stop_sleepers(False)
    return outcomes
