"""Jobs taking turns on a virtual clock: waits overlap (time advances to the earliest pending
deadline, as an event loop's would), at most ``limit`` run at a time, a failure stops the
starting, and a crash in one job abandons the others."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from remediate.clock import SystemClock, VirtualClock
from remediate.engine.parallel import run_batches
from remediate.turns import Abandoned

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class Crash(BaseException):
    """Like the fakes' SimulatedCrash: nothing may catch it."""


def sleeper(clock: VirtualClock, seconds: float, log: list[str], name: str) -> Callable[[], None]:
    def job() -> None:
        log.append(f"{name} starts")
        clock.sleep(seconds)
        log.append(f"{name} ends at {(clock.now() - START).total_seconds():g}")

    return job


def test_concurrent_waits_take_as_long_as_the_longest_and_end_in_time_order() -> None:
    clock, log = VirtualClock(START), list[str]()
    jobs = [sleeper(clock, 20, log, "a"), sleeper(clock, 10, log, "b")]

    outcomes = run_batches(clock, jobs, limit=8)

    assert (clock.now() - START).total_seconds() == 20
    assert log == ["a starts", "b starts", "b ends at 10", "a ends at 20"]
    assert all(o.started and o.error is None for o in outcomes)


def test_at_most_limit_jobs_run_at_once() -> None:
    clock, log = VirtualClock(START), list[str]()
    run_batches(clock, [sleeper(clock, 10, log, str(n)) for n in range(4)], limit=2)
    assert (clock.now() - START).total_seconds() == 20


def test_one_at_a_time_waits_add_up() -> None:
    clock, log = VirtualClock(START), list[str]()
    run_batches(clock, [sleeper(clock, 10, log, str(n)) for n in range(3)], limit=1)
    assert (clock.now() - START).total_seconds() == 30


def test_a_failure_lets_the_jobs_in_flight_end_and_starts_no_more() -> None:
    clock, log = VirtualClock(START), list[str]()

    def fails() -> None:
        clock.sleep(1)
        raise ValueError("EXCH02 refused")

    jobs = [sleeper(clock, 10, log, "a"), fails, sleeper(clock, 10, log, "c")]
    outcomes = run_batches(clock, jobs, limit=2)

    assert log == ["a starts", "a ends at 10"]
    assert [o.started for o in outcomes] == [True, True, False]
    assert isinstance(outcomes[1].error, ValueError) and outcomes[0].error is None


def test_a_crash_in_one_job_abandons_the_others_where_they_wait() -> None:
    clock, log = VirtualClock(START), list[str]()

    def crashes() -> None:
        clock.sleep(1)
        raise Crash

    outcomes = run_batches(clock, [sleeper(clock, 10, log, "a"), crashes], limit=2)

    assert log == ["a starts"]
    assert isinstance(outcomes[0].error, Abandoned) and isinstance(outcomes[1].error, Crash)


def test_ties_go_to_the_job_waiting_longest_unless_a_chooser_says_otherwise() -> None:
    clock, log = VirtualClock(START), list[str]()
    clock.choose = lambda candidates: candidates[-1]
    run_batches(clock, [sleeper(clock, 0, log, "a"), sleeper(clock, 0, log, "b")], limit=2)
    assert log[0] == "b starts"


def test_a_crash_abandons_a_job_that_was_started_but_never_had_a_turn() -> None:
    clock, log = VirtualClock(START), list[str]()

    def crashes() -> None:
        raise Crash

    outcomes = run_batches(clock, [crashes, sleeper(clock, 10, log, "b")], limit=2)

    assert log == []
    assert isinstance(outcomes[1].error, Abandoned)


def test_a_stop_request_cuts_short_the_waits_of_batches_on_other_threads() -> None:
    clock = SystemClock()
    ended: list[BaseException | None] = []

    def waits() -> None:
        try:
            clock.sleep(30)  # a poll interval on a real server
        except BaseException as error:
            ended.append(error)
            raise
        ended.append(None)

    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()  # Ctrl-C
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_batches(clock, [waits, waits], limit=2)

    assert time.monotonic() - started < 5
    assert len(ended) == 2 and all(isinstance(e, KeyboardInterrupt) for e in ended)
