"""Reads retried one call at a time. Discovery, observation and some applies make many reads;
retried as a whole, each attempt needs every read to succeed (at one failed call in five, ten
reads in a row succeed one time in nine). Retried one by one, a read that failed is simply sent
again. Mutations are never retried here: one is sent again only after a fresh observe shows it
did not take effect (the executor's apply loop). Each is an operation a stop request waits for
(``stopping.operation``), so Ctrl-C or SIGTERM never lands in the middle of one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from tenacity import RetryCallState, Retrying

from remediate.clock import Clock
from remediate.engine.retry import RetryPolicy
from remediate.engine.stopping import operation
from remediate.ports import (
    DIRECTORY_CHANGES,
    DIRECTORY_READS,
    EXCHANGE_CHANGES,
    EXCHANGE_READS,
    Directory,
    Exchange,
    World,
)


class _RetriedPort:
    """Every read of ``port`` is retried (per ``retrying``) after a transient error; every
    change is sent once, as an operation a stop request waits for."""

    def __init__(
        self,
        port: object,
        reads: frozenset[str],
        changes: frozenset[str],
        retrying: Callable[[], Retrying],
    ) -> None:
        self._port = port
        self._reads = reads
        self._changes = changes
        self._retrying = retrying

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._port, name)
        if name in self._changes:

            def sent(*args: Any, **kwargs: Any) -> Any:
                with operation():
                    return method(*args, **kwargs)

            return sent
        if name not in self._reads:
            return method

        def retried(*args: Any, **kwargs: Any) -> Any:
            return self._retrying()(method, *args, **kwargs)

        return retried


class RetriedReads:
    """``world`` whose directory and Exchange retry each read."""

    def __init__(self, world: World, retrying: Callable[[], Retrying]) -> None:
        self._world = world
        self._directory = cast(
            Directory, _RetriedPort(world.directory, DIRECTORY_READS, DIRECTORY_CHANGES, retrying)
        )
        self._exchange = cast(
            Exchange, _RetriedPort(world.exchange, EXCHANGE_READS, EXCHANGE_CHANGES, retrying)
        )

    @property
    def directory(self) -> Directory:
        return self._directory

    @property
    def exchange(self) -> Exchange:
        return self._exchange

    @property
    def clock(self) -> Clock:
        return self._world.clock

    @property
    def organisation(self) -> str:
        return self._world.organisation

    def attach_run(self, run_dir: Path | None) -> None:
        self._world.attach_run(run_dir)

    def rehearsal(self) -> World:
        return self._world.rehearsal()


def retried_reads(
    world: World, policy: RetryPolicy, on_retry: Callable[[RetryCallState], None] | None = None
) -> RetriedReads:
    """``world`` whose reads ``policy`` retries, on the world's own clock."""
    return RetriedReads(world, lambda: policy.retrying(world.clock, on_retry))
