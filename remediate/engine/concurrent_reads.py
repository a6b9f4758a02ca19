"""Reads of several servers at once: discovery asks every Exchange server the same question
(its mailboxes, its stores, its services), and a server at a remote site costs a round trip
per call, so one server after another would make a plan as slow as the sum of them all.

The reads run as ``engine.parallel`` runs a step's batches (threads on real servers, turns on
a fake world's virtual clock), at most ``--parallel`` at a time, and their results come back in
the order they were asked for: what a playbook builds from them (a plan) cannot depend on which
server answered first. Outside a run's discovery (``reads_at_most`` not in force) they are read
one after another, so a library caller never gets threads it did not ask for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from remediate.clock import Clock
from remediate.engine.parallel import Job, checked_parallel, run_batches
from remediate.turns import Abandoned, Outcome

K = TypeVar("K")
R = TypeVar("R")

# Set by the engine around a discovery; the reads' own threads do not inherit it, so a read
# that itself reads each server does so one by one (turns cannot nest).
_LIMIT: ContextVar[int] = ContextVar("remediate_concurrent_reads", default=1)


@contextmanager
def reads_at_most(limit: int) -> Iterator[None]:
    """Let ``read_each`` calls in this block run ``limit`` reads at a time."""
    token = _LIMIT.set(checked_parallel(limit, "parallel"))
    try:
        yield
    finally:
        _LIMIT.reset(token)


def read_each(clock: Clock, keys: Sequence[K], read: Callable[[K], R]) -> list[R]:
    """``[read(key) for key in keys]``, the reads concurrent (see the module's docstring).
    A failed read stops the others from starting and is raised once those in flight end."""
    results: dict[int, R] = {}

    def job(index: int) -> Job:
        def one() -> None:
            results[index] = read(keys[index])

        return one

    outcomes = run_batches(clock, [job(index) for index in range(len(keys))], _LIMIT.get())
    failure = _first_failure(outcomes)
    if failure is not None:
        raise failure
    return [results[index] for index in range(len(keys))]


def _first_failure(outcomes: Sequence[Outcome]) -> BaseException | None:
    """What to raise: a crash or stop request before any error (the process must not go on as
    if only a read had failed), else the first error in the keys' order; never ``Abandoned``,
    which only echoes another read's crash."""
    errors = [
        outcome.error
        for outcome in outcomes
        if outcome.error is not None and not isinstance(outcome.error, Abandoned)
    ]
    dying = [error for error in errors if not isinstance(error, Exception)]
    return next(iter(dying or errors), None)
