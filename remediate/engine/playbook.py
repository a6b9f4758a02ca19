"""What a playbook is: parameters, a discovery, and steps built from what discovery selected."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from remediate.dn import split_rdns
from remediate.engine.changes import Finding, JsonValue
from remediate.engine.fingerprint import Scope
from remediate.engine.history import RunHistory
from remediate.engine.step import Step
from remediate.errors import InputError
from remediate.model import utc
from remediate.ports import World


class Selection(Protocol):
    """Everything discovery selected; the only scope the steps may touch. Journaled, so a
    resumed run acts on exactly the same objects."""

    def to_json(self) -> JsonValue: ...

    def summary(self) -> dict[str, int]: ...

    def scope(self) -> Scope:
        """The objects, mailboxes and services the steps may touch (for fingerprints)."""
        ...

    def without(self: S, keys: Collection[str]) -> S:
        """The selection less everything tied to these drifted fingerprint keys."""
        ...


S = TypeVar("S", bound=Selection)


@dataclass(frozen=True, slots=True)
class Discovery(Generic[S]):
    selection: S
    findings: tuple[Finding, ...] = ()


def parse_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def parse_dn(value: str) -> str:
    rdns = split_rdns(value)
    if not rdns or any("=" not in rdn for rdn in rdns):
        raise ValueError("is not a distinguished name like OU=Migrated,DC=corp,DC=example")
    return value


def parse_datetime(value: str) -> datetime:
    try:
        return utc(value)
    except ValueError:
        raise ValueError("is not an ISO 8601 date and time like 2026-11-01T10:00:00Z") from None


def parse_names(value: str) -> frozenset[str]:
    names = frozenset(part.strip() for part in value.split(",") if part.strip())
    if not names:
        raise ValueError("is not a comma-separated list of names")
    return names


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise ValueError("is not true or false")


def parse_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError("is not a number of seconds") from None
    if seconds <= 0:
        raise ValueError("must be a positive number of seconds")
    return seconds


@dataclass(frozen=True, slots=True)
class Parameter:
    """A ``-p name=value`` of a playbook. ``default`` is what applies when it is not given
    (None: nothing, or see ``required``); ``required`` says which must be given, in words
    (``"ou or users"``), for ``show``."""

    name: str
    help: str
    parse: Callable[[str], object] = parse_text
    example: str = ""
    default: str | None = None
    required: str = ""


def parse_parameters(
    playbook: str, specs: Sequence[Parameter], raw: Mapping[str, str]
) -> dict[str, Any]:
    """Validate ``key=value`` parameters: unknown keys and bad values get a clear error."""
    by_name = {spec.name: spec for spec in specs}
    parsed: dict[str, Any] = {}
    for key, value in raw.items():
        spec = by_name.get(key)
        if spec is None:
            valid = ", ".join(sorted(by_name)) or "none"
            raise InputError(
                f"unknown parameter {key!r}",
                target=f"playbook {playbook}",
                hint=f"valid parameters: {valid}",
            )
        try:
            parsed[key] = spec.parse(value)
        except ValueError as error:
            raise InputError(
                f"parameter {key}={value!r} {error}",
                target=f"playbook {playbook}",
                hint=f"example: -p {key}={spec.example}" if spec.example else spec.help,
            ) from None
    return parsed


P = TypeVar("P")
AnyStepKind = type[Step[Any, Any]]


@dataclass(frozen=True, slots=True)
class OutlineStep:
    """One step a plan of the playbook can run: its kind, its id where the kind runs more
    than once (``wait-for-replication-after-reconnect``), and when it runs if not always."""

    kind: AnyStepKind
    id: str = ""
    when: str = ""

    @property
    def step_id(self) -> str:
        return self.id or self.kind.name


@dataclass(frozen=True, slots=True)
class Disruption:
    """A stretch of a run that users notice, from the start of one step to the end of
    another (``transport stopped``: stop-service to start-service)."""

    what: str
    first: str
    last: str


class Playbook(ABC, Generic[P, S]):
    """A repair procedure. ``discover`` only reads; ``steps`` builds steps from the selection.

    What the change ticket says of the whole procedure is the playbook's: ``notice`` (what
    users notice), ``disruptions`` (spanning several steps) and ``rollback_order``.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    kb: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[tuple[Parameter, ...]]
    # Every step a plan can run, in order: a step kind, or an OutlineStep that says its id
    # and when it runs. ``show`` lists them; reports find a step id's kind here.
    outline: ClassVar[tuple[AnyStepKind | OutlineStep, ...]]
    notice: ClassVar[tuple[str, ...]] = ()
    disruptions: ClassVar[tuple[Disruption, ...]] = ()
    rollback_order: ClassVar[str] = ""

    @classmethod
    def step_outline(cls) -> list[OutlineStep]:
        return [
            entry if isinstance(entry, OutlineStep) else OutlineStep(entry) for entry in cls.outline
        ]

    @classmethod
    def step_kind(cls, step_id: str) -> AnyStepKind | None:
        """The kind of step behind a step id of this playbook's plans: listed in the outline,
        else the kind whose name the id extends (``run-cleanup-agent-after-reconnect``)."""
        outline = cls.step_outline()
        for entry in outline:
            if entry.step_id == step_id:
                return entry.kind
        extended = [entry.kind for entry in outline if step_id.startswith(entry.kind.name + "-")]
        return max(extended, key=lambda kind: len(kind.name)) if extended else None

    @abstractmethod
    def parse(self, raw: Mapping[str, str]) -> P:
        """Validate the operator's parameters."""

    @abstractmethod
    def discover(self, world: World, params: P) -> Discovery[S]:
        """Read-only: select every object the repair will touch."""

    def discover_with_history(self, world: World, params: P, history: RunHistory) -> Discovery[S]:
        """``discover``, also told what earlier runs in the state directory did (what the
        engine calls); a playbook that never reads its history need not override it."""
        return self.discover(world, params)

    @abstractmethod
    def steps(self, selection: S) -> list[Step[Any, Any]]:
        """The steps, in KB order, over exactly the selection."""

    @abstractmethod
    def load_selection(self, data: JsonValue) -> S:
        """The inverse of ``Selection.to_json`` (for resume and saved plans)."""
