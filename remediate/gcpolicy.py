"""The program's policy for CPython's cyclic garbage collector, in one place.

A program opts in (the command line's ``main()``, the benchmarks); the library never touches the
collector, so a caller of ``Engine.plan`` keeps the collector it set up. Inside
:func:`program_collector`:

- Full passes (generation 2) are paced by the size of the heap. CPython 3.11 makes one after
  every 10 passes of the middle generation unless fewer objects reached generation 2 since the
  last one than a quarter of those it kept then. A run defeats that guard: each batch's
  observations (every user on a DC, every mailbox of a server) live for the whole batch, reach
  generation 2 and count as newcomers though they are gone by the next full pass, while each
  full pass scans everything the run holds (its selection, targets, records, the rehearsal's
  copy of the world). Together the passes would cost the square of the run's size. Paced, a
  full pass waits until the young generations have taken in, net, :data:`HEAP_FRACTION` of the
  heap a full pass scans (allocated blocks, less those frozen; measured again after each full
  pass): the guard's own rule, counted in objects allocated rather than in objects that
  reached generation 2. Small programs are paced as by default (the default threshold is the
  floor).
- :func:`settled` says that what exists now lives as long as the program (its world): it is
  collected once and frozen out of the collector, so no pass scans it again. Pacing then
  follows the rest of the heap: a rehearsal's copy of the world, held in reference cycles once
  the rehearsal is over, is freed by the next full pass, which must not wait for the run to
  allocate half the world again.
- :func:`building` pauses the collector while many long-lived objects are made (a world read
  from its file or built from a scenario), which each pass would otherwise scan again.

Everything is handed back as found when the outermost :func:`program_collector` ends (tests
call ``main()`` many times in one process). docs/PERFORMANCE.md has the measurements.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# A full pass once the young generations have taken in, net, this fraction of the heap's
# blocks since the last one.
HEAP_FRACTION = 0.5


def full_pass_threshold(allocated_blocks: int, threshold: tuple[int, int, int]) -> int:
    """The third threshold (middle-generation passes between full passes) for a scanned heap
    of ``allocated_blocks``, given the thresholds to keep (never below their third)."""
    young, middle, full = threshold
    per_middle_pass = max(young, 1) * max(middle, 1)  # objects taken in per middle pass
    return max(full, int(allocated_blocks * HEAP_FRACTION) // per_middle_pass)


class _Policy:
    """The process's one policy: the collector is global, so programs nested or in several
    threads share it; what it changed is handed back when the last of them ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: tuple[int, int, int] | None = None
        self.frozen_blocks = 0  # the heap frozen by settled(): no pass scans it

    @property
    def active(self) -> bool:
        return self._depth > 0

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
            gc.unfreeze()
            self.frozen_blocks = 0
            saved, self._saved = self._saved, None
            if saved is not None:
                young, middle, _ = gc.get_threshold()
                gc.set_threshold(young, middle, saved[2])

    def repace(self) -> None:
        saved = self._saved
        if saved is not None:
            young, middle, _ = gc.get_threshold()
            scanned = max(0, sys.getallocatedblocks() - self.frozen_blocks)
            gc.set_threshold(young, middle, full_pass_threshold(scanned, saved))

    def after_pass(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            self.repace()


POLICY = _Policy()


@contextmanager
def program_collector() -> Iterator[None]:
    """The program's collector policy while inside (nestable, from any thread)."""
    POLICY.enter()
    try:
        yield
    finally:
        POLICY.leave()


def settled() -> None:
    """What exists now lives as long as the program: collect once, then freeze it out of the
    collector's passes. Nothing outside :func:`program_collector`."""
    if POLICY.active:
        gc.collect()
        gc.freeze()
        POLICY.frozen_blocks = sys.getallocatedblocks()
        POLICY.repace()


@contextmanager
def building() -> Iterator[None]:
    """Pause the collector while many long-lived objects are made (inside
    :func:`program_collector`; elsewhere the collector is left alone)."""
    if not POLICY.active or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
