"""Jobs on threads that take turns on virtual time, as an event loop's tasks would.

A fake world's servers answer in virtual time, so running batches on free threads would make a
run depend on the operating system's scheduling, and each thread's wait would add to the one
clock. Here exactly one job runs at a time; a job gives up its turn only when it sleeps (each
fake backend call sleeps, for its latency or for no time at all), and the next turn goes to the
job due earliest, the clock advancing to that moment; among jobs due at the same moment, the
one that has been waiting longest (a call of no time lets every other job due now go first).
Time spent waiting together is counted once, the order of events is a function of the jobs
alone (and of ``choose``, which breaks ties, so a test can draw the interleaving), and the fakes
are never entered by two threads at once: they need no lock of their own.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from remediate.clock import VirtualClock

Choose = Callable[[Sequence[int]], int]


@dataclass(slots=True)
class Outcome:
    """How one job ended: not started (an earlier failure stopped the starting), done, or
    with ``error``."""

    started: bool = False
    error: BaseException | None = None


class Abandoned(BaseException):
    """The process is dying (another job crashed): unwind without doing anything more."""


def lowest(candidates: Sequence[int]) -> int:
    """The default tie-break: the first candidate, the job waiting longest."""
    return candidates[0]


class Turns:
    """One run of jobs taking turns on ``clock``; at most ``limit`` started and unfinished."""

    def __init__(self, clock: VirtualClock, limit: int, choose: Choose = lowest) -> None:
        self._clock = clock
        self._limit = limit
        self._choose = choose
        self._cond = threading.Condition()
        self._turn: int | None = None
        # Started, unfinished jobs: when each may go on, and since when it waits for that.
        self._due: dict[int, tuple[datetime, int]] = {}
        self._order = itertools.count()
        self._mine = threading.local()
        self._stop_starting = False
        self._dying: BaseException | None = None  # a crash or interrupt in one job
        self._told: set[int] = set()  # jobs that were told about it

    def owns_current_thread(self) -> bool:
        return getattr(self._mine, "index", None) is not None

    def run(self, jobs: Sequence[Callable[[], None]]) -> list[Outcome]:
        outcomes = [Outcome() for _ in jobs]
        waiting = list(range(len(jobs)))
        threads: list[threading.Thread] = []

        def body(index: int) -> None:
            self._mine.index = index
            try:
                with self._cond:
                    self._wait_for_turn(index)  # may be told at once that the process dies
                jobs[index]()
            except BaseException as error:
                outcomes[index].error = error
            with self._cond:
                self._finished(index, outcomes[index].error, waiting, start)

        def start(index: int) -> None:
            outcomes[index].started = True
            self._due[index] = (self._clock.now(), next(self._order))
            thread = threading.Thread(
                target=body, args=(index,), daemon=True, name=f"remediate-batch-{index}"
            )
            threads.append(thread)
            thread.start()

        with self._cond:
            while waiting and len(self._due) < self._limit:
                start(waiting.pop(0))
            self._pass_turn()
            while self._due:
                self._cond.wait()
        for thread in threads:
            thread.join()
        return outcomes

    def sleep(self, seconds: float) -> None:
        index: int = self._mine.index
        with self._cond:
            moment = self._clock.now() + timedelta(seconds=max(0.0, seconds))
            self._due[index] = (moment, next(self._order))
            self._pass_turn()
            self._wait_for_turn(index)

    # -- under the condition's lock --------------------------------------------------------------

    def _wait_for_turn(self, index: int) -> None:
        while self._turn != index:
            self._cond.wait()
        dying = self._dying
        if dying is not None and index not in self._told:
            self._told.add(index)
            if isinstance(dying, KeyboardInterrupt):
                # Stopped like the job that saw the request: it records what took effect.
                raise type(dying)(*dying.args)
            raise Abandoned from dying

    def _finished(
        self,
        index: int,
        error: BaseException | None,
        waiting: list[int],
        start: Callable[[int], None],
    ) -> None:
        del self._due[index]
        if error is not None:
            self._stop_starting = True
            if not isinstance(error, Exception | Abandoned) and self._dying is None:
                self._dying = error
                self._told.add(index)
        while waiting and not self._stop_starting and len(self._due) < self._limit:
            start(waiting.pop(0))
        self._pass_turn()

    def _pass_turn(self) -> None:
        if not self._due:
            self._turn = None
        else:
            earliest = min(self._due.values())[0]
            candidates = [
                i
                for i, _ in sorted(
                    ((i, order) for i, (moment, order) in self._due.items() if moment == earliest),
                    key=lambda pair: pair[1],
                )
            ]
            chosen = self._choose(candidates)
            self._clock.advance_to(earliest)
            self._turn = chosen if chosen in candidates else candidates[0]
        self._cond.notify_all()
