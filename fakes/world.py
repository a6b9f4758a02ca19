"""A fake world: one AD domain and one Exchange organisation on virtual time (``World``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from remediate.clock import VirtualClock
from remediate.model import MailItem
from remediate.ports import DIRECTORY_CHANGES, EXCHANGE_CHANGES

from .directory import FakeDirectory
from .exchange import Delivery, FakeExchange
from .exports import DirectorySink, MemorySink
from .faults import Faults
from .timeline import Timeline

# The backend operations that change the servers' state; every other one only reads.
MUTATIONS = frozenset(
    {f"directory.{name}" for name in DIRECTORY_CHANGES}
    | {f"exchange.{name}" for name in EXCHANGE_CHANGES}
)


def _faults() -> Faults:
    return Faults(
        [f"directory.{name}" for name in FakeDirectory.OPERATIONS]
        + [f"exchange.{name}" for name in FakeExchange.OPERATIONS]
    )


class FakeWorld:
    """Implements ``remediate.ports.World`` in memory, with virtual time and fault injection.

    Time moves only when slept on (``clock.sleep``) or :meth:`advance`\\ d; what became due
    (replication, scheduled cleanup passes) is processed before the next backend operation.
    """

    def __init__(
        self,
        directory: FakeDirectory,
        exchange: FakeExchange,
        timeline: Timeline,
        faults: Faults,
        scenario: dict[str, object] | None = None,
    ) -> None:
        self._directory = directory
        self._exchange = exchange
        self._timeline = timeline
        self._faults = faults
        faults.sleep = timeline.clock.sleep
        self.scenario = scenario  # how a scenario builder made this world (kept in the file)

    @classmethod
    def create(
        cls,
        *,
        domain: str,
        base_dn: str,
        dcs: Sequence[tuple[str, float]],
        now: datetime,
        writable_dc: str | None = None,
        scenario: dict[str, object] | None = None,
        partial_replicas: Sequence[str] = (),
    ) -> FakeWorld:
        """An empty world: DCs as (name, replication delay in seconds), the clock at ``now``."""
        timeline = Timeline(VirtualClock(now))
        faults = _faults()
        directory = FakeDirectory(
            domain,
            base_dn,
            dcs,
            timeline=timeline,
            faults=faults,
            writable_dc=writable_dc,
            partial_replicas=partial_replicas,
        )
        exchange = FakeExchange(directory, timeline=timeline, faults=faults, organisation=domain)
        return cls(directory, exchange, timeline, faults, scenario)

    @property
    def directory(self) -> FakeDirectory:
        return self._directory

    @property
    def exchange(self) -> FakeExchange:
        return self._exchange

    @property
    def clock(self) -> VirtualClock:
        return self._timeline.clock

    @property
    def faults(self) -> Faults:
        return self._faults

    @property
    def organisation(self) -> str:
        return self._directory.domain

    @property
    def operation_count(self) -> int:
        return self._faults.count

    def attach_run(self, run_dir: Path | None) -> None:
        """Exports go to ``<run_dir>/backups/mail/``; None keeps them in memory."""
        if run_dir is not None:
            self._exchange.sink = DirectorySink(run_dir / "backups" / "mail")
        elif not isinstance(self._exchange.sink, MemorySink):
            self._exchange.sink = MemorySink()

    def on_change(self, observer: Callable[[], None]) -> None:
        """Call ``observer()`` each time an operation that changes the world has taken effect
        (the command line saves the world then, so a killed process leaves the servers' state
        behind, as real servers would)."""

        def changed(operation: str) -> None:
            if operation in MUTATIONS:
                observer()

        self._faults.on_effect(changed)

    def rehearsal(self) -> FakeWorld:
        """An independent copy of the current state at the same virtual time, without faults;
        existing exports are copied into memory. The scenario block is shared: nothing
        changes it, and at 100,000 users copying it would cost seconds."""
        self.catch_up()
        timeline = Timeline(VirtualClock(self.clock.now()))
        faults = _faults()
        directory = self._directory.clone(timeline=timeline, faults=faults)
        exchange = self._exchange.clone(directory, timeline=timeline, faults=faults)
        # The rehearsal takes the same time.
        faults.latency = dict(self._faults.latency)
        faults.endpoint_latency = dict(self._faults.endpoint_latency)
        return FakeWorld(directory, exchange, timeline, faults, self.scenario)

    def set_latency(
        self,
        *,
        exchange_s: float = 0.0,
        directory_s: float = 0.0,
        servers: Mapping[str, float] | None = None,
    ) -> None:
        """Make each Exchange (directory) call take this many seconds of virtual time;
        ``servers``: each call to one of these endpoints takes its own time instead."""
        ports = {"exchange": exchange_s, "directory": directory_s}
        for where, seconds in [*ports.items(), *(servers or {}).items()]:
            if not seconds >= 0 or seconds == float("inf"):
                raise ValueError(f"{where} latency: expected seconds >= 0, not {seconds}")
        self._faults.latency.update(ports)
        self._faults.endpoint_latency = dict(servers or {})

    def catch_up(self) -> None:
        """Process what is due by now (backend operations do this by themselves)."""
        self._timeline.catch_up()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass, and everything due in them happen."""
        self.clock.sleep(seconds)
        self.catch_up()

    def deliver(self, server: str, recipient_legacy_dn: str, item: MailItem) -> Delivery:
        """Send ``item`` through ``server`` to the user with this legacyExchangeDN."""
        self.catch_up()
        return self._exchange.deliver(server, recipient_legacy_dn, item)
