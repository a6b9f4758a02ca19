"""The step contract (docs/ARCHITECTURE.md, The step contract): observe, plan, apply, on all
targets of one endpoint at once."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Generic, Protocol, TypeVar

from remediate.engine.backups import Backups
from remediate.engine.changes import Change, ChangeRecord, Impact, JsonValue, Planned
from remediate.engine.wording import Duration, Wording, by_endpoint, where
from remediate.ports import World


class Target(Protocol):
    """Anything a step acts on. ``key`` is stable across runs; ``endpoint`` groups targets
    that one DC or one Exchange server answers for together."""

    @property
    def key(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def endpoint(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Options:
    """Operator choices that steps honour; journaled, so a resumed run keeps them."""

    allow_protected: bool = False
    replication_timeout_s: float | None = None  # None: the step's own deadline
    # DCs (or global catalogs) the replication waits leave out, by name: they are down.
    leave_out_dcs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "allow_protected": self.allow_protected,
            "replication_timeout_s": self.replication_timeout_s,
            **(
                {"leave_out_dcs": list[JsonValue](self.leave_out_dcs)} if self.leave_out_dcs else {}
            ),
        }

    @staticmethod
    def checked(data: JsonValue) -> Options:
        """Options read from a file, refused (ValueError) where the command line would refuse
        them: a saved plan's options are the operator's, whatever the file was edited into."""
        if not isinstance(data, dict):
            raise ValueError("options: expected an object")
        unknown = sorted(set(data) - {"allow_protected", "replication_timeout_s", "leave_out_dcs"})
        if unknown:
            raise ValueError(f"options.{unknown[0]}: not an option")
        allow = data.get("allow_protected", False)
        if not isinstance(allow, bool):
            raise ValueError("options.allow_protected: expected true or false")
        timeout = data.get("replication_timeout_s")
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise ValueError(
                "options.replication_timeout_s: expected a positive number of "
                "seconds (as --replication-timeout) or null"
            )
        left_out = data.get("leave_out_dcs", [])
        if not isinstance(left_out, list) or not all(
            isinstance(name, str) and name.strip() for name in left_out
        ):
            raise ValueError(
                "options.leave_out_dcs: expected a list of DC names (as --leave-out-dc)"
            )
        return Options(
            allow,
            None if timeout is None else float(timeout),
            tuple(str(name) for name in left_out),
        )

    @staticmethod
    def from_json(data: JsonValue) -> Options:
        if not isinstance(data, dict):
            return Options()
        timeout = data.get("replication_timeout_s")
        left_out = data.get("leave_out_dcs")
        return Options(
            allow_protected=bool(data.get("allow_protected")),
            replication_timeout_s=float(timeout) if isinstance(timeout, int | float) else None,
            leave_out_dcs=tuple(str(name) for name in left_out)
            if isinstance(left_out, list)
            else (),
        )


@dataclass(slots=True)
class StepContext:
    world: World
    backups: Backups
    options: Options = field(default_factory=Options)


T = TypeVar("T", bound=Target)
ObservationT = TypeVar("ObservationT")


class Step(ABC, Generic[T, ObservationT]):
    """One idempotent step. Subclasses set ``name``, ``impact`` and ``summary``.

    ``deadline_s`` is how long the effect of ``apply`` may take to become visible (0: at once);
    the engine re-observes with backoff until ``plan`` says NoOp or the deadline passes.

    A step also speaks for itself in reports and change tickets: ``wording`` (what it does, in
    words), :meth:`risk`, :meth:`rollback` and :meth:`expected_duration`. Each has a default,
    so a new step needs none of them; the command line asks the step, never a table of names.
    """

    name: ClassVar[str]
    impact: ClassVar[Impact]
    summary: ClassVar[str]
    # 'delete 37 users': the verb and the noun (one, many); None: '<step id> 37 changes'
    wording: ClassVar[Wording | None] = None
    deadline_s: float = 0.0
    poll_s: float = 5.0
    poll_max_s: float = 60.0
    # How many of its endpoint batches run at once: None, the run's --parallel (Exchange servers
    # worked on at a time); a step that only reads sets its own bound.
    batches_at_once: ClassVar[int | None] = None

    def __init__(
        self, targets: Sequence[T] | Callable[[], Iterable[T]], *, step_id: str | None = None
    ) -> None:
        """``targets``: the targets, or a function that makes them. Made targets are made when
        first asked for, and forgotten again by :meth:`forget_targets` (the engine calls it once
        the step is done), so a run holds one step's targets at a time rather than every
        step's from the start (at 100,000 users, about 100 MB)."""
        if callable(targets):
            self._make_targets: Callable[[], Iterable[T]] | None = targets
            self._targets: tuple[T, ...] | None = None
        else:
            self._make_targets = None
            self._targets = tuple(targets)
        self.id = step_id or self.name

    @property
    def targets(self) -> tuple[T, ...]:
        if self._targets is None:
            assert self._make_targets is not None
            self._targets = tuple(self._make_targets())
        return self._targets

    def forget_targets(self) -> None:
        """Let go of targets that were made by a function (made again if asked for again);
        targets given as they are stay."""
        if self._make_targets is not None:
            self._targets = None

    def deadline(self, options: Options) -> float:
        """How long to wait for the effect; an operator option may say otherwise."""
        return self.deadline_s

    @abstractmethod
    def observe(self, ctx: StepContext, targets: Sequence[T]) -> Mapping[str, ObservationT]:
        """Read-only: what the step needs to know about each target (by key)."""

    @abstractmethod
    def plan(self, target: T, observation: ObservationT) -> Change:
        """Pure: the change this target needs, given what was observed."""

    @abstractmethod
    def apply(self, ctx: StepContext, pending: Sequence[tuple[T, Planned]]) -> None:
        """Perform exactly these changes (all targets of one endpoint)."""

    # -- what reports and change tickets say about the step ---------------------------------

    @classmethod
    def in_words(cls, step_id: str, records: Sequence[ChangeRecord]) -> list[str]:
        """One phrase per endpoint: 'delete 37 users in Active Directory', 'purge 37
        mailboxes on EXCH01'."""
        verb, one, many = cls.wording or Wording(step_id, "change", "changes")
        phrases = []
        for endpoint, group in by_endpoint(records).items():
            phrase = f"{verb} {len(group):,} {one if len(group) == 1 else many}"
            phrases.append(f"{phrase} {where(endpoint)}" if endpoint else phrase)
        return phrases

    @classmethod
    def risk(cls, records: Sequence[ChangeRecord]) -> str | None:
        """What is destructive or disruptive about these changes and what users notice, as
        Markdown built only from counts and server names (None: nothing to say)."""
        return None

    @classmethod
    def rollback(cls, records: Sequence[ChangeRecord]) -> tuple[str, ...]:
        """How to undo these changes by hand, as Markdown lines (never from target names)."""
        return ()

    @classmethod
    def expected_duration(
        cls, records: Sequence[ChangeRecord], rehearsed_s: float, *, manual: bool = False
    ) -> Duration:
        """How long the step is expected to take: what the rehearsal waited on its virtual
        clock (the world's replication delays and the like); ``manual``: the step will ask
        the operator to act. A step whose wait can be longer than the rehearsal shows gives
        the worst case and why."""
        return Duration(rehearsed_s)
