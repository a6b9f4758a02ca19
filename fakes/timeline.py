"""Virtual time for a fake world: things that happen by themselves, processed in order.

Replication arrivals and scheduled cleanup-agent passes are due at moments of virtual time. They
are processed lazily, before each backend operation, strictly in chronological order: a cleanup
pass must see exactly what its DC had received at that moment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from remediate.clock import VirtualClock


class EventSource(Protocol):
    def next_due(self) -> datetime | None:
        """When the next event of this source is due (None: nothing scheduled)."""
        ...

    def process_next(self) -> None:
        """Perform that next event."""
        ...


class Timeline:
    """A virtual clock and the sources of timed events; ties go to the source added first."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self._sources: list[EventSource] = []

    def add_source(self, source: EventSource) -> None:
        self._sources.append(source)

    def now(self) -> datetime:
        return self.clock.now()

    def catch_up(self) -> None:
        """Process every event due up to now, oldest first."""
        now = self.clock.now()
        while True:
            due: tuple[datetime, EventSource] | None = None
            for source in self._sources:
                moment = source.next_due()
                if moment is not None and moment <= now and (due is None or moment < due[0]):
                    due = (moment, source)
            if due is None:
                return
            due[1].process_next()
