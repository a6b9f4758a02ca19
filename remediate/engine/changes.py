"""What a step says about one target: nothing to do, a concrete change, unknown, or would fail."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field
from enum import StrEnum
from typing import Protocol, TypeAlias

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


class Labelled(Protocol):
    """Anything with a label (a step's target): a record may make its label when asked."""

    @property
    def label(self) -> str: ...


_SCALARS = (str, int, float, bool, type(None))
_SHAPES: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[tuple[str, ...], tuple[str, ...]]] = {}
_NOT_FLAT = None


def _flat_keys(value: JsonValue) -> tuple[str, ...] | None:
    """The keys of a dict whose values are all scalars, else None."""
    if not isinstance(value, dict) or len(value) > 8:
        return None
    if not all(isinstance(item, _SCALARS) for item in value.values()):
        return None
    return tuple(value)


class ChangeRecord:
    """A planned or applied change, as reports and JSON output show it.

    Built and read as the frozen dataclass it used to be (the same fields, positional or by
    name; ``before`` and ``after`` read as new dicts), but held compactly: a run holds several
    of these per user (at 100,000 users over a million), so flat ``before``/``after`` dicts are
    kept as one tuple of their values with their keys shared by every record of that shape,
    and ``label`` may be the target itself, its text made only when read."""

    __slots__ = ("_label", "_shape", "_values", "action", "deletes", "endpoint", "impact",
                 "step", "target")

    step: str
    target: str
    endpoint: str
    impact: Impact
    action: str
    deletes: int
    _label: str | Labelled
    _shape: tuple[tuple[str, ...], tuple[str, ...]] | None
    _values: tuple[JsonValue, ...]

    def __init__(  # noqa: PLR0917 - the dataclass's own signature, kept for library users
        self,
        step: str,
        target: str,
        label: str | Labelled,
        endpoint: str,
        impact: Impact,
        action: str,
        before: JsonValue,
        after: JsonValue,
        deletes: int = 0,
    ) -> None:
        put = object.__setattr__
        put(self, "step", step)
        put(self, "target", target)
        put(self, "_label", label)
        put(self, "endpoint", endpoint)
        put(self, "impact", impact)
        put(self, "action", action)
        put(self, "deletes", deletes)
        before_keys, after_keys = _flat_keys(before), _flat_keys(after)
        if before_keys is None or after_keys is None:
            put(self, "_shape", _NOT_FLAT)
            put(self, "_values", (before, after))
            return
        keys = (before_keys, after_keys)
        put(self, "_shape", _SHAPES.setdefault(keys, keys))
        assert isinstance(before, dict) and isinstance(after, dict)
        put(self, "_values", (*before.values(), *after.values()))

    @property
    def label(self) -> str:
        label = self._label
        return label if isinstance(label, str) else label.label

    @property
    def before(self) -> JsonValue:
        if self._shape is None:
            value: JsonValue = self._values[0]
            return value
        keys = self._shape[0]
        return dict(zip(keys, self._values[:len(keys)], strict=True))

    @property
    def after(self) -> JsonValue:
        if self._shape is None:
            value: JsonValue = self._values[1]
            return value
        return dict(zip(self._shape[1], self._values[len(self._shape[0]):], strict=True))

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _same_label(self, other: ChangeRecord) -> bool:
        mine, theirs = self._label, other._label
        if mine is theirs or (type(mine) is type(theirs) and mine == theirs):
            return True  # the same text, or equal targets (whose labels are equal)
        return self.label == other.label

    def _same_values(self, other: ChangeRecord) -> bool:
        if self._shape is other._shape and self._shape is not None:
            return bool(self._values == other._values)
        return self.before == other.before and self.after == other.after

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChangeRecord):
            return NotImplemented
        return (
            self.step == other.step and self.target == other.target
            and self.endpoint == other.endpoint and self.impact == other.impact
            and self.action == other.action and self.deletes == other.deletes
            and self._same_label(other)
            and self._same_values(other)
        )

    def __hash__(self) -> int:
        return hash((self.step, self.target, self.endpoint, self.action, self.deletes))

    def __repr__(self) -> str:
        return (f"ChangeRecord(step={self.step!r}, target={self.target!r}, "
                f"label={self.label!r}, endpoint={self.endpoint!r}, impact={self.impact!r}, "
                f"action={self.action!r}, before={self.before!r}, after={self.after!r}, "
                f"deletes={self.deletes!r})")

    def replace(self, **changes: object) -> ChangeRecord:
        """A copy with these fields changed (what ``dataclasses.replace`` did)."""
        fields: dict[str, object] = {
            "step": self.step, "target": self.target, "label": self._label,
            "endpoint": self.endpoint, "impact": self.impact, "action": self.action,
            "before": self.before, "after": self.after, "deletes": self.deletes,
        }
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"ChangeRecord has no field(s) {', '.join(sorted(unknown))}")
        fields.update(changes)
        return ChangeRecord(**fields)  # type: ignore[arg-type]

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
