"""Runs steps against a world: the same code rehearses a plan on fakes and applies it for real,
which is what makes the planned change list equal the applied one."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from tenacity import RetryCallState

from remediate.engine import events as ev
from remediate.engine.changes import ChangeRecord, Planned, Unknown, WouldFail
from remediate.engine.events import Events
from remediate.engine.reads import RetriedReads
from remediate.engine.retry import RetryPolicy, until_converged
from remediate.engine.step import Step, StepContext, Target
from remediate.errors import RemediateError, RunPaused, StepFailed
from remediate.ports import ManualActionRequired

AnyStep = Step[Any, Any]


def group_by_endpoint(targets: Iterable[Target]) -> dict[str, list[Target]]:
    groups: dict[str, list[Target]] = {}
    for target in targets:
        groups.setdefault(target.endpoint, []).append(target)
    return groups


_FORMATS_LABEL: dict[type, bool] = {}


def _formats_label(target: Target) -> bool:
    """Whether this kind of target makes its label anew on each read (asked once per kind)."""
    kind = type(target)
    known = _FORMATS_LABEL.get(kind)
    if known is None:
        known = _FORMATS_LABEL[kind] = target.label is not target.label
    return known


class PlannedRecords:
    """The rehearsal's records, in order. An applied change equal to the next planned one is
    recorded as that same object, so a run holds each change once, not twice. A few planned
    records may have no applied twin (a store's nightly cleanup pass did that change first):
    the next ones are looked for a little further on, so one such record does not stop the
    sharing for the rest of the run."""

    LOOKAHEAD = 8

    def __init__(self, planned: Sequence[ChangeRecord]) -> None:
        self._planned = planned
        self._next = 0

    def same_as(self, record: ChangeRecord) -> ChangeRecord:
        end = min(self._next + self.LOOKAHEAD, len(self._planned))
        for index in range(self._next, end):
            if self._planned[index] == record:
                self._next = index + 1
                return self._planned[index]
        return record


class Executor:
    """Observe, plan, apply and verify each step, one endpoint batch at a time."""

    def __init__(
        self,
        ctx: StepContext,
        events: Events,
        *,
        rehearsal: bool,
        retry: RetryPolicy,
        manual_deadline_s: float,
        completed: Collection[str] = (),
        planned: Sequence[ChangeRecord] = (),
    ) -> None:
        self.ctx = ctx
        self.events = events
        self.rehearsal = rehearsal
        self.retry = retry
        self.manual_deadline_s = manual_deadline_s
        self.completed = set(completed)
        self.records: list[ChangeRecord] = []
        self.manual_actions: list[str] = []
        # Seconds each step took on the world's clock: in a rehearsal that is virtual time, so
        # the waits the fakes model (replication delays, the cleanup agent) and nothing else.
        self.elapsed_s: dict[str, float] = {}
        self.manual_steps: list[str] = []  # the steps that asked the operator to act
        self._planned = PlannedRecords(planned)

    def run(self, steps: Sequence[AnyStep]) -> list[ChangeRecord]:
        for step in steps:
            if step.id in self.completed:
                continue
            try:
                self.run_step(step)
            finally:
                step.forget_targets()  # made again if anyone asks; most runs never do
        return self.records

    def run_step(self, step: AnyStep) -> None:
        clock = self.ctx.world.clock
        started = clock.now()
        self.events.emit(ev.STEP_STARTED, step=step.id, targets=len(step.targets))
        try:
            for endpoint, targets in group_by_endpoint(step.targets).items():
                self._run_batch(step, endpoint, targets)
        except RunPaused:
            raise
        except RemediateError as error:
            self.events.emit(ev.STEP_FAILED, step=step.id, target=error.target, error=str(error))
            self.events.checkpoint()
            raise
        self.completed.add(step.id)
        self.elapsed_s[step.id] = (clock.now() - started).total_seconds()
        self.events.emit(ev.STEP_COMPLETED, step=step.id)
        self.events.checkpoint()

    def _with_retried_reads(self, step: AnyStep, phase: str) -> StepContext:
        clock, on_retry = self.ctx.world.clock, self._on_retry(step, phase)
        reads = RetriedReads(self.ctx.world, lambda: self.retry.retrying(clock, on_retry))
        return StepContext(reads, self.ctx.backups, self.ctx.options)

    def _observe(self, step: AnyStep, targets: Sequence[Target]) -> Mapping[str, Any]:
        ctx = self._with_retried_reads(step, "observe")
        for attempt in self.retry.retrying(ctx.world.clock, self._on_retry(step, "observe")):
            with attempt:
                return step.observe(ctx, targets)
        raise AssertionError("unreachable: tenacity re-raises")  # pragma: no cover

    def _pending(
        self, step: AnyStep, targets: Sequence[Target]
    ) -> list[tuple[Target, Planned]]:
        """Observe and plan; a WouldFail or Unknown stops the step (never guessed)."""
        observations = self._observe(step, targets)
        pending: list[tuple[Target, Planned]] = []
        for target in targets:
            change = step.plan(target, observations[target.key])
            if isinstance(change, WouldFail | Unknown):
                kind = "would fail" if isinstance(change, WouldFail) else "cannot tell"
                raise StepFailed(
                    step.id,
                    f"{kind}: {change.reason}",
                    target=target.label,
                    hint="fix the cause (or narrow the scope), then plan again or resume",
                )
            if isinstance(change, Planned):
                pending.append((target, change))
        return pending

    def _run_batch(self, step: AnyStep, endpoint: str, targets: Sequence[Target]) -> None:
        pending = self._pending(step, targets)
        if not pending:
            return
        records = [self._record(step, target, change) for target, change in pending]
        if not self.rehearsal:
            self.events.emit(
                ev.STEP_APPLYING,
                step=step.id,
                endpoint=endpoint,
                targets=[record.target for record in records],
            )
            self.events.checkpoint()
        instructions = self._apply(step, pending)
        self._verify(step, endpoint, [target for target, _ in pending], instructions)
        done_event = ev.STEP_PLANNED if self.rehearsal else ev.STEP_APPLIED
        for record in records:
            self.events.emit(
                done_event,
                step=step.id,
                target=record.target,
                label=record.label,
                endpoint=record.endpoint,
                action=record.action,
                impact=record.impact.value,
                before=record.before,
                after=record.after,
            )
        self.events.emit(ev.STEP_VERIFIED, step=step.id, endpoint=endpoint, changes=len(records))
        self.events.checkpoint()
        self.records.extend(records)

    def _apply(self, step: AnyStep, pending: list[tuple[Target, Planned]]) -> str | None:
        """Apply with retries; after a transient error, observe afresh and re-send only what
        has not taken effect. Returns operator instructions for a manual step.

        Attempts are counted per stretch without progress: one call carrying many targets can
        meet several unrelated transient faults, each on another target, and a fresh observe
        that finds fewer targets pending starts a new count (the retry policy bounds a fault
        that keeps coming back, not how many targets a batch holds)."""
        ctx = self._with_retried_reads(step, "apply")
        observed = False  # ``pending`` was just observed: send it without another look
        while True:
            at_start, progressed = len(pending), False
            for attempt in self.retry.retrying(ctx.world.clock, self._on_retry(step, "apply")):
                with attempt:
                    if observed:
                        pending = self._pending(step, [target for target, _ in pending])
                        progressed = len(pending) < at_start
                    observed = True
                    if progressed:
                        break
                    if pending:
                        try:
                            step.apply(ctx, pending)
                        except ManualActionRequired as manual:
                            self._announce_manual(step, manual.instructions)
                            if self.rehearsal and manual.rehearse is not None:
                                manual.rehearse()  # the plan assumes the operator does it now
                            return manual.instructions
            if not progressed:
                return None
            observed = False

    def _announce_manual(self, step: AnyStep, instructions: str) -> None:
        self.manual_actions.append(instructions)
        if step.id not in self.manual_steps:
            self.manual_steps.append(step.id)
        self.events.emit(ev.STEP_MANUAL, step=step.id, instructions=instructions)
        self.events.checkpoint()

    def _verify(
        self, step: AnyStep, endpoint: str, targets: list[Target], instructions: str | None
    ) -> None:
        deadline = self.manual_deadline_s if instructions else step.deadline(self.ctx.options)
        outstanding: list[int] = [len(targets)]

        def converged() -> bool:
            # Poll only what has not converged yet: a target that reached its state stays there.
            targets[:] = [target for target, _ in self._pending(step, targets)]
            outstanding[0] = len(targets)
            return not targets

        def on_poll(state: RetryCallState) -> None:
            self.events.emit(
                ev.STEP_WAITING,
                step=step.id,
                endpoint=endpoint,
                outstanding=outstanding[0],
                polls=state.attempt_number,
            )

        clock = self.ctx.world.clock
        waiting = until_converged(
            clock, deadline_s=deadline, poll_s=step.poll_s, poll_max_s=step.poll_max_s,
            on_poll=on_poll,
        )
        done = converged() if deadline <= 0 else bool(waiting(converged))
        if done:
            return
        if instructions and not self.rehearsal:
            raise RunPaused(self.events.run_id or "unknown", step.id, instructions)
        raise StepFailed(
            step.id,
            f"{outstanding[0]} target(s) did not reach the desired state within {deadline:g}s",
            target=endpoint,
            hint="check the endpoint, then resume the run"
            + (" (a longer wait: --replication-timeout SECONDS)"
               if step.name == "wait-for-replication" else ""),
        )

    def _record(self, step: AnyStep, target: Target, change: Planned) -> ChangeRecord:
        return self._planned.same_as(ChangeRecord(
            step=step.id,
            target=target.key,
            # A label the target keeps (a DN) is held as it is; one it formats each time is
            # formatted again when read, from the target, rather than held as text.
            label=target if _formats_label(target) else target.label,
            endpoint=target.endpoint,
            impact=step.impact,
            action=change.action,
            before=change.before,
            after=change.after,
            deletes=change.deletes,
        ))

    def _on_retry(self, step: AnyStep, phase: str) -> Callable[[RetryCallState], None]:
        def emit(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            self.events.emit(
                ev.STEP_RETRIED,
                step=step.id,
                phase=phase,
                attempt=state.attempt_number,
                error=str(error),
            )

        return emit
