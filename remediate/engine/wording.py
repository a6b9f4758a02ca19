"""The vocabulary steps use to describe themselves to people: endpoints in words, what a step
does per endpoint, and how long it is expected to take."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from remediate.engine.changes import ChangeRecord

HOUR = 3600.0


class Wording(NamedTuple):
    """'delete', 'user', 'users': a step's changes in words."""

    verb: str
    one: str
    many: str


class Duration(NamedTuple):
    """A step's expected duration in seconds: ``typical`` (what the rehearsal waited) and
    ``worst`` (None: the same), with ``why`` it may take that long."""

    typical: float
    worst: float | None = None
    why: str = ""

    @property
    def longest(self) -> float:
        return self.typical if self.worst is None else max(self.typical, self.worst)


def where(endpoint: str) -> str:
    """``directory`` -> 'in Active Directory'; ``dc:DC2`` -> '(DC2)'; ``gc:GC9`` -> '(global
    catalog GC9)'; ``exchange:EXCH01`` -> 'on EXCH01'."""
    if endpoint == "directory":
        return "in Active Directory"
    kind, sep, name = endpoint.partition(":")
    if kind == "dc" and name:
        return f"({name})"
    if kind == "gc" and name:
        return f"(global catalog {name})"
    return f"on {name}" if sep and name else f"on {endpoint}" if endpoint else ""


def by_endpoint(records: Sequence[ChangeRecord]) -> dict[str, list[ChangeRecord]]:
    groups: dict[str, list[ChangeRecord]] = {}
    for record in records:
        groups.setdefault(record.endpoint, []).append(record)
    return groups


def endpoints_text(records: Sequence[ChangeRecord]) -> str:
    """The servers these records touch, in words: 'EXCH01, EXCH02'."""
    names: list[str] = []
    for record in records:
        text = where(record.endpoint).removeprefix("on ").removeprefix("in ")
        if text and text not in names:
            names.append(text)
    return ", ".join(names)


def duration_text(seconds: float) -> str:
    """'45 s', '15 min', '1 h 5 min', '25 h'."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
