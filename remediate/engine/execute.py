"""Runs steps against a world: the same code rehearses a plan on fakes and applies it for real,
which is what makes the planned change list equal the applied one."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from tenacity import RetryCallState

from remediate.engine import events as ev
from remediate.engine.changes import ChangeRecord, JsonValue, NoOp, Planned, Unknown, WouldFail
from remediate.engine.events import Events
from remediate.engine.parallel import DEFAULT_PARALLEL, run_batches
from remediate.engine.reads import RetriedReads
from remediate.engine.retry import RetryPolicy, until_converged
from remediate.engine.step import Step, StepContext, Target
from remediate.errors import RemediateError, RunPaused, StepFailed
from remediate.ports import ManualActionRequired
from remediate.turns import Abandoned, Outcome

AnyStep = Step[Any, Any]


def group_by_endpoint(targets: Iterable[Target]) -> dict[str, list[Target]]:
    groups: dict[str, list[Target]] = {}
    for target in targets:
        groups.setdefault(target.endpoint, []).append(target)
    return groups


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


@dataclass(slots=True)
class Batch:
    """One endpoint's targets of a step, and what its run recorded (merged in the plan's
    order once every batch of the step has ended, whatever order they ended in)."""

    endpoint: str
    targets: list[Target]
    records: list[ChangeRecord] = field(default_factory=list)
    manual: str | None = None


class Executor:
    """Observe, plan, apply and verify each step; a step's endpoint batches run concurrently,
    ``parallel`` at a time."""

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
        in_doubt: Mapping[tuple[str, str], ChangeRecord] | None = None,
        parallel: int = DEFAULT_PARALLEL,
    ) -> None:
        """``in_doubt``: changes an earlier process announced (``step.applying``) but never
        recorded as applied (it was killed), by (step, target): each is recorded as applied
        when its step observes it done, else applied and recorded as usual."""
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
        self.warnings: list[str] = []  # what steps said about targets they left alone
        self._planned = PlannedRecords(planned)
        self._in_doubt = dict(in_doubt or {})
        self.parallel = parallel

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
        self.events.step_started(step.id, len(step.targets))
        batches = [
            Batch(endpoint, targets)
            for endpoint, targets in group_by_endpoint(step.targets).items()
        ]
        jobs = [partial(self._run_batch, step, batch) for batch in batches]
        try:
            outcomes = run_batches(
                self.ctx.world.clock, jobs, step.batches_at_once or self.parallel
            )
        finally:  # a stop request mid-step still leaves what the batches recorded
            for batch in batches:
                self.records.extend(self._planned.same_as(record) for record in batch.records)
                if batch.manual is not None:
                    self.manual_actions.append(batch.manual)
        try:
            self._raise_first(step, batches, outcomes)
        except RunPaused:
            raise
        except RemediateError as error:
            self.events.step_failed(step.id, error.target, str(error))
            self.events.checkpoint()
            raise
        self.completed.add(step.id)
        self.elapsed_s[step.id] = (clock.now() - started).total_seconds()
        self.events.step_completed(step.id)
        self.events.checkpoint()

    def _raise_first(
        self, step: AnyStep, batches: Sequence[Batch], outcomes: Sequence[Outcome]
    ) -> None:
        """Re-raise how the step's batches ended, in the plan's order: a crash or stop request
        first; then an error, saying which servers completed the step; then the manual
        actions still pending, all of them together."""
        errors = [
            (batch, outcome.error)
            for batch, outcome in zip(batches, outcomes, strict=True)
            if outcome.error is not None and not isinstance(outcome.error, Abandoned)
        ]
        for _, error in errors:
            if not isinstance(error, Exception):
                raise error
        paused = [error for _, error in errors if isinstance(error, RunPaused)]
        failed = [(batch, error) for batch, error in errors if not isinstance(error, RunPaused)]
        if failed:
            _, error = failed[0]
            if len(batches) > 1 and isinstance(error, RemediateError):
                done = [
                    b.endpoint
                    for b, o in zip(batches, outcomes, strict=True)
                    if o.started and o.error is None
                ]
                left = len(batches) - len(done)
                progress = (
                    f"completed on {', '.join(done) or 'no server'}; "
                    f"{left} of {len(batches)} servers left for resume"
                )
                error.hint = "; ".join(filter(None, [error.hint, progress]))
            raise error
        if len(paused) == 1:
            raise paused[0]
        if paused:
            raise RunPaused(
                paused[0].run_id, step.id, "\n".join(pause.instructions for pause in paused)
            )

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

    def _pending(self, step: AnyStep, targets: Sequence[Target]) -> list[tuple[Target, Planned]]:
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
            elif (
                isinstance(change, NoOp) and change.warning and change.warning not in self.warnings
            ):
                self.warnings.append(change.warning)
        return pending

    def _run_batch(self, step: AnyStep, batch: Batch) -> None:
        endpoint, targets = batch.endpoint, batch.targets
        pending = self._pending(step, targets)
        if self._in_doubt:
            self._settle_in_doubt(step, batch, pending)
        if not pending:
            return
        records = [self._record(step, target, change) for target, change in pending]
        if not self.rehearsal:
            # The batch's intent, durable before its first change: whatever ends this process,
            # the next one knows which targets may have changed and observes them.
            self.events.emit(
                ev.STEP_APPLYING,
                step=step.id,
                endpoint=endpoint,
                targets=[record.target for record in records],
            )
            self.events.checkpoint()
        try:
            manual = self._apply(step, pending)
            batch.manual = None if manual is None else manual.instructions
            self._verify(step, endpoint, [target for target, _ in pending], manual)
        except (KeyboardInterrupt, Exception):
            if not self.rehearsal:
                self._record_what_took_effect(
                    step, batch, records, [target for target, _ in pending]
                )
            raise
        self._record_applied(step, batch, records)
        self.events.batch_finished(step.id, endpoint, len(records))
        self.events.checkpoint()

    def _record_applied(
        self,
        step: AnyStep,
        batch: Batch,
        records: Sequence[ChangeRecord],
        *,
        settled: bool = False,
    ) -> None:
        for record in records:
            self.events.change(record, applied=not self.rehearsal, settled=settled)
        batch.records.extend(records)

    def _record_what_took_effect(
        self,
        step: AnyStep,
        batch: Batch,
        records: Sequence[ChangeRecord],
        targets: Sequence[Target],
    ) -> None:
        """A batch stopped part-way (interrupted, failed, paused): observe its targets once and
        record the changes that took effect, so the run's record is exact. If even that read
        fails, the batch's intent stays in the journal and ``resume`` settles it."""
        try:
            still = {target.key for target, _ in self._pending(step, targets)}
        except (KeyboardInterrupt, RemediateError):
            return
        self._record_applied(
            step, batch, [record for record in records if record.target not in still]
        )
        self.events.emit(
            ev.STEP_STOPPED,
            step=step.id,
            endpoint=batch.endpoint,
            unchanged=list[JsonValue](sorted(still)),
        )
        self.events.checkpoint()

    def _settle_in_doubt(
        self, step: AnyStep, batch: Batch, pending: list[tuple[Target, Planned]]
    ) -> None:
        """Changes an earlier process sent without recording them: the ones observed done
        now are recorded as applied (``settled``); the pending ones are applied as usual."""
        waiting = {target.key for target, _ in pending}
        done = []
        for target in batch.targets:
            record = self._in_doubt.pop((step.id, target.key), None)
            if record is not None and target.key not in waiting:
                done.append(record)
        if done:
            self._record_applied(step, batch, done, settled=True)
            self.events.checkpoint()

    def _apply(
        self, step: AnyStep, pending: list[tuple[Target, Planned]]
    ) -> ManualActionRequired | None:
        """Apply with retries; after a transient error, observe afresh and re-send only what
        has not taken effect. Returns what the operator is asked to do for a manual step.

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
                            return manual
            if not progressed:
                return None
            observed = False

    def _announce_manual(self, step: AnyStep, instructions: str) -> None:
        if step.id not in self.manual_steps:
            self.manual_steps.append(step.id)
        self.events.manual_action(step.id, instructions)
        self.events.checkpoint()

    def _verify(
        self,
        step: AnyStep,
        endpoint: str,
        targets: list[Target],
        manual: ManualActionRequired | None,
    ) -> None:
        instructions = None if manual is None else manual.instructions
        deadline = self.manual_deadline_s if instructions else step.deadline(self.ctx.options)
        outstanding: list[int] = [len(targets)]

        def converged() -> bool:
            # Poll only what has not converged yet: a target that reached its state stays there.
            targets[:] = [target for target, _ in self._pending(step, targets)]
            outstanding[0] = len(targets)
            return not targets

        def on_poll(state: RetryCallState) -> None:
            self.events.waiting(step.id, endpoint, outstanding[0], state.attempt_number)

        clock = self.ctx.world.clock
        waiting = until_converged(
            clock,
            deadline_s=deadline,
            poll_s=step.poll_s,
            poll_max_s=step.poll_max_s,
            on_poll=on_poll,
        )
        done = converged() if deadline <= 0 else bool(waiting(converged))
        if not done and self.rehearsal and manual is not None and manual.rehearse is not None:
            # The rehearsal waits for a manual action as apply does (on a fake world the stores'
            # own scheduled pass may do it meanwhile), so both see the same time pass and the
            # same changes follow. Where apply would pause for the operator instead, the plan
            # assumes the operator does it then.
            manual.rehearse()
            done = converged()
        if done:
            return
        if instructions and not self.rehearsal:
            raise RunPaused(self.events.run_id or "unknown", step.id, instructions)
        raise StepFailed(
            step.id,
            f"{outstanding[0]} target(s) did not reach the desired state within {deadline:g}s",
            target=endpoint,
            hint="check the endpoint, then resume the run"
            + (
                " (a longer wait: --replication-timeout SECONDS)"
                if step.name == "wait-for-replication"
                else ""
            ),
        )

    def _record(self, step: AnyStep, target: Target, change: Planned) -> ChangeRecord:
        return ChangeRecord(
            step=step.id,
            target=target.key,
            label=target.label,
            endpoint=target.endpoint,
            impact=step.impact,
            action=change.action,
            before=change.before,
            after=change.after,
            deletes=change.deletes,
        )

    def _on_retry(self, step: AnyStep, phase: str) -> Callable[[RetryCallState], None]:
        def emit(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            self.events.retried(step.id, phase, state.attempt_number, str(error))

        return emit
