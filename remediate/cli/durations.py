"""How long a run is expected to take, step by step and in total, and how long the disruptions
that span several steps last (transport stopped, users without a mailbox).

Each step says it (``Step.expected_duration``) from what the rehearsal waited on its virtual
clock (the world's replication delays and the like) and what the real wait can be at worst
(the cleanup agent's nightly run, the replication timeout). The time the servers take for each
change comes on top: it is not estimated."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from remediate.cli.notes import expected_duration
from remediate.engine.changes import ChangeRecord
from remediate.engine.wording import Duration, duration_text
from remediate.playbooks import find_playbook


@dataclass(frozen=True, slots=True)
class StepDuration:
    step: str
    duration: Duration


@dataclass(frozen=True, slots=True)
class WindowDuration:
    what: str
    first: str
    last: str
    typical: float
    longest: float


def step_durations(
    playbook: str,
    steps: Mapping[str, Sequence[ChangeRecord]],
    rehearsed_s: Mapping[str, float],
    manual_steps: Collection[str],
) -> list[StepDuration]:
    """Every step the rehearsal ran (those without changes too: a wait may still be needed)
    that the plan changes something in or that waited."""
    order = list(rehearsed_s) + [step for step in steps if step not in rehearsed_s]
    durations = []
    for step in order:
        records = steps.get(step, ())
        duration = expected_duration(
            playbook, step, records, rehearsed_s.get(step, 0.0), manual=step in manual_steps
        )
        if records or duration.typical > 0:
            durations.append(StepDuration(step, duration))
    return durations


def disruptions(playbook: str, durations: Sequence[StepDuration]) -> list[WindowDuration]:
    """The playbook's disruption windows that this plan opens (both ends in it)."""
    found = find_playbook(playbook)
    order = [entry.step for entry in durations]
    spans = []
    for window in found.disruptions if found is not None else ():
        if window.first not in order or window.last not in order:
            continue
        inside = durations[order.index(window.first) : order.index(window.last) + 1]
        spans.append(
            WindowDuration(
                window.what,
                window.first,
                window.last,
                sum(entry.duration.typical for entry in inside),
                sum(entry.duration.longest for entry in inside),
            )
        )
    return spans


def span_text(typical: float, longest: float) -> str:
    """'about 15 min', or 'about 15 min, at most 29 h'."""
    text = f"about {duration_text(typical)}"
    return text if longest <= typical else f"{text}, at most {duration_text(longest)}"
