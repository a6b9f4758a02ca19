"""Pace CPython's cyclic garbage collector while a run goes, so its full passes cost time in
proportion to the run, not to its square.

CPython 3.11 makes a full pass (generation 2) after every 10 passes of the middle
generation, unless fewer objects reached generation 2 since the last full pass than a quarter
of those it kept then. A run defeats that guard: each batch's observations (every user on a DC,
every mailbox of a server) live for the whole batch, so they reach generation 2 before they die,
and each counts as a newcomer though it is gone by the next full pass; every 10th pass of the
middle generation becomes a full pass. Their number grows with the run's allocations and each
scans every object the run holds (its selection, targets, records, the rehearsal's copy of the
world), so together they grow with the square of the number of users: at 10,000 users
(kb278447) 71 full passes took 13-16 s of the run's 76-84 s of CPU, at 1,000 users 6 took 0.1 s.

While a run goes, the full pass waits instead until the younger generations have taken in, net,
as many objects as :data:`HEAP_FRACTION` of the heap's allocated blocks (measured after each full
pass): the guard's own rule, counted in objects allocated rather than in objects that reached
generation 2. Small runs are paced as before (the default threshold is the floor); the number
of full passes grows far more slowly than the run (kb278447: 5, 7, 10 and 16 at 1,000, 3,000,
10,000 and 30,000 users, where there were 6, 18, 71 and 123).
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

# A full pass once the young generations have taken in, net, this fraction of the heap's
# blocks since the last one.
HEAP_FRACTION = 0.5


def full_pass_threshold(allocated_blocks: int, threshold: tuple[int, int, int]) -> int:
    """The third threshold (middle-generation passes between full passes) for a heap of
    ``allocated_blocks``, given the thresholds to keep (never below their third)."""
    young, middle, full = threshold
    per_middle_pass = max(young, 1) * max(middle, 1)  # objects taken in per middle pass
    return max(full, int(allocated_blocks * HEAP_FRACTION) // per_middle_pass)


class _Pacing:
    """The process's one pacing: the collector is global, so runs in several threads share
    it; the thresholds found are restored when the last of them ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: tuple[int, int, int] | None = None

    def enter(self) -> None:
        with self._lock:
            self._depth += 1
            if self._depth == 1:
                self._saved = gc.get_threshold()
                gc.callbacks.append(self.after_pass)
                self.repace()

    def leave(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth:
                return
            if self.after_pass in gc.callbacks:
                gc.callbacks.remove(self.after_pass)
            saved, self._saved = self._saved, None
            if saved is not None:
                young, middle, _ = gc.get_threshold()
                gc.set_threshold(young, middle, saved[2])

    def repace(self) -> None:
        saved = self._saved
        if saved is not None:
            young, middle, _ = gc.get_threshold()
            gc.set_threshold(young, middle, full_pass_threshold(sys.getallocatedblocks(), saved))

    def after_pass(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            self.repace()


PACING = _Pacing()


@contextmanager
def paced_collector() -> Iterator[None]:
    """Pace full passes by the heap's size while inside (nestable, from any thread); the
    thresholds are restored when the outermost one ends."""
    PACING.enter()
    try:
        yield
    finally:
        PACING.leave()


P = ParamSpec("P")
R = TypeVar("R")


def paced(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` run inside :func:`paced_collector`."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with paced_collector():
            return function(*args, **kwargs)

    return wrapper
