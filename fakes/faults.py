"""Fault injection: every port call of the fakes is one backend operation that can be made to fail.

Operations are named ``directory.<method>`` or ``exchange.<method>``. A rule fails the next
matching calls, either *before* the call does anything or *after* it took effect (the response
was lost: the caller cannot tell whether it happened, exactly what retries must cope with).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from remediate.errors import BackendError, PermanentError, TransientError

FaultKind = Literal["transient", "permanent"]
FaultWhen = Literal["before", "after"]
T = TypeVar("T")


class SimulatedCrash(BaseException):
    """The process died right after an operation took effect (not an Exception: nothing that
    catches ``Exception`` may survive it, as nothing survives a power loss)."""


@dataclass(slots=True)
class _Rule:
    operation: str
    kind: FaultKind
    remaining: int
    when: FaultWhen
    match: str | None

    def applies(self, operation: str, when: FaultWhen, arguments: str) -> bool:
        return (
            self.remaining > 0
            and self.when == when
            and self.operation in ("*", operation)
            and (self.match is None or self.match in arguments)
        )

    def error(self, operation: str, endpoint: str, target: str | None) -> BackendError:
        self.remaining -= 1
        return _injected(self.kind, self.when, operation, endpoint, target)


def _injected(
    kind: FaultKind, when: FaultWhen, operation: str, endpoint: str, target: str | None
) -> BackendError:
    lost = " after it took effect (the response was lost)" if when == "after" else ""
    if kind == "transient":
        return TransientError(
            f"injected transient fault: connection reset{lost}",
            endpoint=endpoint,
            operation=operation,
            target=target,
            hint="retry",
        )
    return PermanentError(
        f"injected permanent fault{lost}",
        endpoint=endpoint,
        operation=operation,
        target=target,
        hint="retrying cannot help",
    )


@dataclass(slots=True)
class _RandomSchedule:
    """Each call fails transiently with probability ``rate``, before or after it takes effect
    (even odds); no operation fails more than ``max_in_a_row`` calls running."""

    rate: float
    rng: random.Random
    max_in_a_row: int
    in_a_row: Counter[str]

    def decide(self, operation: str) -> FaultWhen | None:
        if self.in_a_row[operation] >= self.max_in_a_row or self.rng.random() >= self.rate:
            self.in_a_row[operation] = 0
            return None
        self.in_a_row[operation] += 1
        return "before" if self.rng.random() < 0.5 else "after"


class Faults:
    """The fault rules of one fake world, and the count and log of its backend operations."""

    def __init__(self, operations: Collection[str] = ()) -> None:
        self._known = frozenset(operations)
        self._rules: list[_Rule] = []
        self._log: list[str] = []
        self._crash_at: int | None = None
        self._effective = 0
        self._random: _RandomSchedule | None = None
        self._on_effect: list[Callable[[str], None]] = []
        self.injected: Counter[str] = Counter()  # random transient faults, per operation
        # Seconds each call of a port ("exchange", "directory") takes, slept on ``sleep`` (the
        # world's clock) before the call: the round trip to a remote server, made measurable.
        self.latency: dict[str, float] = {}
        # A server's own round trip, instead of its port's (a remote site, a busy server).
        self.endpoint_latency: dict[str, float] = {}
        # One operation at a time, whole: batches taking turns on virtual time never overlap,
        # but a world served to real threads (the loopback WinRM endpoint's handlers, an apply
        # on the system clock) would. Never held across a sleep, so turns cannot deadlock on it.
        self.lock = threading.RLock()
        self.sleep: Callable[[float], None] = lambda seconds: None

    def pace(self, port: str, endpoint: str) -> None:
        """A call of ``port`` to ``endpoint`` travels: sleep its latency. Always a sleep, even of
        no time, so that jobs taking turns on virtual time (``remediate.turns``) switch at every
        call."""
        latency = self.endpoint_latency.get(endpoint)
        self.sleep(self.latency.get(port, 0.0) if latency is None else latency)

    @property
    def count(self) -> int:
        """Backend operations attempted so far (failed ones included)."""
        return len(self._log)

    @property
    def log(self) -> Sequence[str]:
        """The names of the operations attempted so far, in order (read-only)."""
        return self._log

    def fail(
        self,
        operation: str,
        kind: FaultKind = "transient",
        times: int = 1,
        when: FaultWhen = "before",
        match: str | None = None,
    ) -> None:
        """Fail the next ``times`` calls of ``operation`` (``"*"``: any) whose arguments, as text,
        contain ``match``."""
        if operation != "*" and self._known and operation not in self._known:
            raise ValueError(
                f"unknown operation {operation!r}; known: {', '.join(sorted(self._known))}"
            )
        if kind not in ("transient", "permanent"):
            raise ValueError(f"fault kind must be 'transient' or 'permanent', not {kind!r}")
        if when not in ("before", "after"):
            raise ValueError(f"fault 'when' must be 'before' or 'after', not {when!r}")
        if times < 1:
            raise ValueError(f"times must be at least 1, not {times}")
        self._rules.append(_Rule(operation, kind, times, when, match))

    def fail_at_random(self, rate: float, seed: int, *, max_in_a_row: int = 3) -> None:
        """From now on, fail each call of any operation transiently with probability ``rate``,
        before or after it takes effect, deterministically from ``seed``; never more than
        ``max_in_a_row`` calls of one operation running (more is an outage, not a glitch).
        :attr:`injected` counts the faults per operation."""
        if not 0 <= rate < 1:
            raise ValueError(f"rate must be in [0, 1), not {rate}")
        if max_in_a_row < 1:
            raise ValueError(f"max_in_a_row must be at least 1, not {max_in_a_row}")
        self._random = _RandomSchedule(rate, random.Random(seed), max_in_a_row, Counter())

    def on_effect(self, observer: Callable[[str], None]) -> None:
        """Call ``observer(operation)`` each time an operation has taken effect (before a
        crash scheduled for that moment, which the operation survives)."""
        self._on_effect.append(observer)

    def crash_after(self, n: int) -> None:
        """Raise :class:`SimulatedCrash` once the ``n``-th operation from now has taken effect."""
        if n < 1:
            raise ValueError(f"crash_after needs n >= 1, not {n}")
        self._crash_at = self._effective + n

    def clear(self) -> None:
        """Remove every fault rule, the random schedule and a pending crash (the count and
        log stay)."""
        self._rules.clear()
        self._random = None
        self._crash_at = None

    def perform(
        self,
        operation: str,
        *,
        endpoint: str,
        target: str | None,
        arguments: object,
        action: Callable[[], T],
    ) -> T:
        """Run ``action`` as the backend operation ``operation``, applying the fault rules."""
        self._log.append(operation)
        text = str(arguments) if self._rules else ""
        at_random = self._random.decide(operation) if self._random else None
        self._raise_for(operation, "before", text, endpoint, target, at_random=at_random)
        result = action()
        self._effective += 1
        for observer in self._on_effect:
            observer(operation)
        if self._crash_at is not None and self._effective >= self._crash_at:
            self._crash_at = None
            raise SimulatedCrash(f"simulated crash after operation #{self.count} ({operation})")
        self._raise_for(operation, "after", text, endpoint, target, at_random=at_random)
        return result

    def _raise_for(
        self,
        operation: str,
        when: FaultWhen,
        arguments: str,
        endpoint: str,
        target: str | None,
        *,
        at_random: FaultWhen | None,
    ) -> None:
        if at_random == when:
            self.injected[operation] += 1
            raise _injected("transient", when, operation, endpoint, target)
        for rule in self._rules:
            if rule.applies(operation, when, arguments):
                raise rule.error(operation, endpoint, target)


class Gate:
    """Runs one port's calls as backend operations named ``<prefix>.<method>``: time catches up
    first (what is due lands before the call sees the world), then the fault rules apply."""

    def __init__(self, prefix: str, faults: Faults, before: Callable[[], None]) -> None:
        self._prefix = prefix
        self._faults = faults
        self._before = before
        # One name string per operation: the faults' log holds one per call (millions).
        self._names: dict[str, str] = {}

    def __call__(
        self,
        method: str,
        endpoint: str,
        target: str | None,
        arguments: object,
        action: Callable[[], T],
    ) -> T:
        self._faults.pace(self._prefix, endpoint)
        with self._faults.lock:
            self._before()
            name = self._names.get(method)
            if name is None:
                name = self._names[method] = f"{self._prefix}.{method}"
            return self._faults.perform(
                name,
                endpoint=endpoint,
                target=target,
                arguments=arguments,
                action=action,
            )
