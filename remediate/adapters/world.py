"""A ``World`` made of real adapters (or any mix of real adapters and fakes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from remediate.clock import Clock, SystemClock
from remediate.ports import Directory, Exchange, World


class LiveWorld:
    """Implements ``remediate.ports.World``: ``rehearse`` builds the fake copy a plan is
    rehearsed on (from a snapshot of the real systems)."""

    def __init__(
        self,
        directory: Directory,
        exchange: Exchange,
        *,
        rehearse: Callable[[], World],
        clock: Clock | None = None,
        organisation: str | None = None,
    ) -> None:
        self._directory = directory
        self._exchange = exchange
        self._rehearse = rehearse
        self._clock = clock or SystemClock()
        self._organisation = organisation or directory.domain
        self.run_dir: Path | None = None

    @property
    def directory(self) -> Directory:
        return self._directory

    @property
    def exchange(self) -> Exchange:
        return self._exchange

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def organisation(self) -> str:
        return self._organisation

    def attach_run(self, run_dir: Path | None) -> None:
        self.run_dir = run_dir

    def rehearsal(self) -> World:
        return self._rehearse()
