"""What a step says about one target: nothing to do, a concrete change, unknown, or would fail."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeAlias

JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"


class Impact(StrEnum):
    """How much a step can hurt, in rising order."""

    READ = "read"
    REVERSIBLE = "reversible"
    DISRUPTIVE = "disruptive"
    DESTRUCTIVE = "destructive"

    @property
    def needs_confirmation(self) -> bool:
        return self in (Impact.DISRUPTIVE, Impact.DESTRUCTIVE)


@dataclass(frozen=True, slots=True)
class NoOp:
    """Already in the desired state, or left alone; ``warning``: what the operator must know
    about leaving it so (it goes to the run's warnings)."""

    target: str
    reason: str = ""
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class Planned:
    """A concrete change. ``deletes`` counts objects or mailboxes it removes (the budget);
    ``observed`` is what the step saw when it planned it, so ``apply`` acts on (and backs up)
    exactly that state without reading it again."""

    target: str
    action: str
    before: JsonValue
    after: JsonValue
    deletes: int = 0
    observed: object = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Unknown:
    """The step cannot tell what it would do; never guessed."""

    target: str
    reason: str


@dataclass(frozen=True, slots=True)
class WouldFail:
    """The change cannot be made as things stand."""

    target: str
    reason: str


Change = NoOp | Planned | Unknown | WouldFail


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """A planned or applied change, as reports and JSON output show it. Hashed by what names
    the change (``before`` and ``after`` may be dicts), compared by every field."""

    step: str
    target: str
    label: str
    endpoint: str
    impact: Impact
    action: str
    before: JsonValue = field(hash=False)
    after: JsonValue = field(hash=False)
    deletes: int = 0

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "step": self.step,
            "target": self.target,
            "label": self.label,
            "endpoint": self.endpoint,
            "impact": self.impact.value,
            "action": self.action,
            "before": self.before,
            "after": self.after,
        }


LEFT_OUT = "left-out"


@dataclass(frozen=True, slots=True)
class Finding:
    """Something discovery or a step reports for an operator decision (never acted on). A
    finding of kind ``LEFT_OUT`` names a target the repair needs but left out because its
    change would fail; the run repairs the others and its exit code says so."""

    kind: str
    target: str
    message: str

    def to_json(self) -> dict[str, JsonValue]:
        return {"kind": self.kind, "target": self.target, "message": self.message}
