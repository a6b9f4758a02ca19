"""Time is injected: real time for real servers, virtual time for fakes and rehearsals."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from remediate.turns import Choose, Outcome, Turns, lowest


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware, UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait; a virtual clock just moves forward."""
        ...


# Set while the threads of a run are told to stop: a stop request reaches the main thread only,
# and a batch waiting on another thread (a poll interval, a backoff) must not outlast it.
_STOP_SLEEPERS = threading.Event()


class SleepInterrupted(KeyboardInterrupt):
    """A wait on another thread cut short because the run was asked to stop."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if threading.current_thread() is threading.main_thread():
            time.sleep(max(0.0, seconds))
        elif _STOP_SLEEPERS.wait(max(0.0, seconds)):
            raise SleepInterrupted("the run was asked to stop")

    @staticmethod
    def stop_sleepers(stop: bool) -> None:
        """Cut short (and refuse) every wait on a thread other than the main one, or no more."""
        if stop:
            _STOP_SLEEPERS.set()
        else:
            _STOP_SLEEPERS.clear()


class VirtualClock:
    """A clock that advances only when slept on: a 15-minute wait costs no wall time."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._turns: Turns | None = None
        # Which of several jobs due at the same moment goes on (a test draws interleavings).
        self.choose: Choose = lowest

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        turns = self._turns
        if turns is not None and turns.owns_current_thread():
            turns.sleep(seconds)  # a turn for the others; time moves as theirs come due
        elif seconds > 0:
            self._now += timedelta(seconds=seconds)

    def run_together(self, jobs: Sequence[Callable[[], None]], limit: int) -> list[Outcome]:
        """Run ``jobs`` as if concurrently, at most ``limit`` at a time (see ``turns``)."""
        if self._turns is not None:
            raise RuntimeError("jobs already run together on this clock")
        self._turns = Turns(self, limit, self.choose)
        try:
            return self._turns.run(jobs)
        finally:
            self._turns = None

    def advance_to(self, moment: datetime) -> None:
        self._now = max(self._now, moment)
