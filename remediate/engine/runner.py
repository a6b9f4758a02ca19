"""Plan, apply and resume: the run lifecycle around the executor.

A plan is a rehearsal: discovery reads the world, then the playbook runs against a fake copy
of it and the changes recorded are the plan. Apply rehearses the same way first, so every safety
gate (WouldFail, budget, confirmation) is passed before the first real change.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from tenacity import RetryCallState

from remediate.engine import events as ev
from remediate.engine.backups import DirectoryBackups, MemoryBackups, write_durably
from remediate.engine.changes import LEFT_OUT, ChangeRecord, Finding, JsonValue
from remediate.engine.collector import paced
from remediate.engine.concurrent_reads import reads_at_most
from remediate.engine.events import Events, Subscriber
from remediate.engine.execute import Executor
from remediate.engine.fingerprint import Fingerprint, drifts, fingerprints
from remediate.engine.history import JournalHistory
from remediate.engine.journal import Journal, OrganisationLock, RunStore, new_run_id
from remediate.engine.lease import OrganisationLease
from remediate.engine.parallel import DEFAULT_PARALLEL, checked_parallel
from remediate.engine.planfile import SavedPlan
from remediate.engine.playbook import Discovery, Playbook, Selection
from remediate.engine.private import remove_temporary
from remediate.engine.reads import retried_reads
from remediate.engine.retry import RetryPolicy
from remediate.engine.runstate import RunState, load_run_state, planned_records
from remediate.engine.step import Options, StepContext
from remediate.errors import (
    Drifted,
    InputError,
    Refused,
    RemediateError,
    RunPaused,
    StepFailed,
)
from remediate.ports import World

__all__ = ["Engine", "RunResult", "RunState", "Safety", "load_run_state"]

AnyPlaybook = Playbook[Any, Any]
Confirm = Callable[[str], bool]

EXIT_DONE = 0
EXIT_ERROR = 1
EXIT_PENDING = 2
EXIT_REFUSED = 3
EXIT_LEFT_OUT = 4  # done (or nothing else to do), but some targets were left out: see findings

# How long a manual step is waited for: the 2000/2003 stores also run the cleanup agent
# nightly by themselves, so 25 hours always covers one pass.
MANUAL_DEADLINE_S = 25 * 3600.0

Read = TypeVar("Read")


@dataclass(slots=True, init=False, eq=False)
class RunResult:
    """What a plan, apply or resume did; the same shape for all three.

    ``selection`` is the selection's JSON. The engine's results keep the selection itself
    (``selected``) and make that JSON each time it is read, never holding it: at 100,000 users
    it would be over 100 MB for the whole run. Read it once and keep it where it is needed
    more than once; assigning ``selection`` stores that JSON as given."""

    mode: str
    playbook: str
    state: str
    parameters: dict[str, str]
    _selection: JsonValue
    selected: Selection | None
    selection_summary: dict[str, int]
    findings: list[Finding]
    changes: list[ChangeRecord]
    planned: list[ChangeRecord]
    manual_actions: list[str]
    warnings: list[str]
    skipped: list[str]  # drifted targets left out (--skip-drifted)
    drifted: list[str]  # drifted targets that refused the run (every one)
    fingerprints: dict[str, Fingerprint]
    run_id: str | None
    run_dir: str | None
    error: str | None
    exit_code: int
    # plan: how long each step took in the rehearsal, on virtual time: the waits the world
    # models (replication, the cleanup agent), for the change ticket's expected duration
    rehearsed_s: dict[str, float]
    manual_steps: list[str]  # plan: the steps that will ask the operator to act

    def __init__(  # noqa: PLR0917 - the dataclass's own signature, kept for library users
        self,
        mode: str,
        playbook: str,
        state: str,
        parameters: dict[str, str],
        selection: JsonValue = None,
        selection_summary: dict[str, int] | None = None,
        findings: list[Finding] | None = None,
        changes: list[ChangeRecord] | None = None,
        planned: list[ChangeRecord] | None = None,
        manual_actions: list[str] | None = None,
        warnings: list[str] | None = None,
        skipped: list[str] | None = None,
        fingerprints: dict[str, Fingerprint] | None = None,
        run_id: str | None = None,
        run_dir: str | None = None,
        error: str | None = None,
        exit_code: int = EXIT_DONE,
        *,
        selected: Selection | None = None,
        drifted: list[str] | None = None,
    ) -> None:
        self.mode = mode
        self.playbook = playbook
        self.state = state
        self.parameters = parameters
        self._selection = selection
        self.selected = selected if selection is None else None
        self.selection_summary = {} if selection_summary is None else selection_summary
        self.findings = [] if findings is None else findings
        self.changes = [] if changes is None else changes
        self.planned = [] if planned is None else planned
        self.manual_actions = [] if manual_actions is None else manual_actions
        self.warnings = [] if warnings is None else warnings
        self.skipped = [] if skipped is None else skipped
        self.drifted = [] if drifted is None else drifted
        self.fingerprints = {} if fingerprints is None else fingerprints
        self.run_id = run_id
        self.run_dir = run_dir
        self.error = error
        self.exit_code = exit_code
        self.rehearsed_s = {}
        self.manual_steps = []

    @property
    def selection(self) -> JsonValue:
        """The selection's JSON: as assigned, else made afresh from ``selected``."""
        if self._selection is None and self.selected is not None:
            return self.selected.to_json()
        return self._selection

    @selection.setter
    def selection(self, value: JsonValue) -> None:
        self._selection = value
        self.selected = None

    __hash__ = None  # type: ignore[assignment]  # mutable, as before

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunResult):
            return NotImplemented
        return self._compared() == other._compared()

    def _compared(self) -> tuple[object, ...]:
        return (self.mode, self.playbook, self.state, self.parameters, self.selection,
                self.selection_summary, self.findings, self.changes, self.planned,
                self.manual_actions, self.warnings, self.skipped, self.drifted,
                self.fingerprints,
                self.run_id, self.run_dir, self.error, self.exit_code)

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "format": "remediate.result/1",
            "mode": self.mode,
            "playbook": self.playbook,
            "state": self.state,
            "exit_code": self.exit_code,
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "parameters": dict(self.parameters),
            "selection_summary": dict(self.selection_summary),
            "selection": self.selection,
            "findings": [finding.to_json() for finding in self.findings],
            "manual_actions": list(self.manual_actions),
            "warnings": list(self.warnings),
            "skipped": list(self.skipped),
            "drifted": list(self.drifted),
            "changes": [record.to_json() for record in self.changes],
            "error": self.error,
        }


def _done(result: RunResult) -> int:
    """A finished run's exit code: 0, or 4 where discovery left targets out."""
    left_out = any(finding.kind == LEFT_OUT for finding in result.findings)
    return EXIT_LEFT_OUT if left_out else EXIT_DONE


def check_against_plan(plan: SavedPlan, planned: Sequence[ChangeRecord], *, exact: bool) -> None:
    """The rehearsal now must do what was approved: the same changes, or (drifted targets
    left out) nothing on a target the plan did not list."""
    approved = [_change_key(change) for change in plan.changes]
    now = [_change_key(record.to_json()) for record in planned]
    if exact:
        if now == approved:
            return
        difference = next((key for key in now if key not in approved), None) or next(
            (key for key in approved if key not in now), None)
    else:
        allowed = {key[:2] for key in approved}
        difference = next((key for key in now if key[:2] not in allowed), None)
        if difference is None:
            return
    where = f"{difference[0]} {difference[1]}" if difference else "the order of the changes"
    raise Refused(
        f"the world changed since the plan in ways its fingerprints do not show: the "
        f"rehearsal now plans {len(now)} change(s), the plan approved {len(approved)} "
        f"(first difference: {where})",
        target=f"plan of {plan.playbook}",
        hint="plan again and have the new plan approved",
    )


# A run writes its journal (each change about twice: intent and outcome) and its LDIF backups
# (the objects' attributes, about what their planned change shows), each about as large as
# plan.json; mail exports are not in the plan, hence the margin.
SPACE_PER_PLAN_BYTE = 4
SPACE_MARGIN = 16 * 1024 * 1024


def check_free_space(run_dir: Path) -> None:
    """Refused before the first change if the run directory's file system cannot take the
    run's journal and backups (estimated from its plan): a full disk mid-run stops it with
    transport stopped or users stripped."""
    needed = SPACE_PER_PLAN_BYTE * (run_dir / "plan.json").stat().st_size + SPACE_MARGIN
    free = shutil.disk_usage(run_dir).free
    if free < needed:
        raise Refused(
            f"the file system of the run directory has {free / 2**20:.1f} MiB free; this run "
            f"needs about {needed / 2**20:.1f} MiB for its journal and backups (estimated "
            "from its plan); nothing was changed", target=str(run_dir),
            hint="free some space, or keep runs elsewhere with --state-dir, then apply again")


def loaded_selection(playbook: AnyPlaybook, data: JsonValue, where: str) -> Selection:
    """A selection read back from a plan file or a journal, an :class:`InputError` if damaged
    (a hand-edited file whose hash was made again, a selection of another playbook)."""
    try:
        selection: Selection = playbook.load_selection(data)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        raise InputError(
            f"its selection is not one of playbook {playbook.name} ({type(error).__name__}: "
            f"{error})", target=where, hint="plan again; the selection is made by plan",
        ) from None
    return selection


SHOWN_DRIFTS = 5  # in the message; the rest are counted, and listed in the run directory


def drift_refusal(playbook: str, drifted: Sequence[str], run_dir: Path) -> Drifted:
    """A short refusal naming the first drifted targets, with every one in
    ``<run dir>/drifted.txt`` and on the error."""
    path = run_dir / "drifted.txt"
    write_durably(path, (line + "\n" for line in drifted))
    shown = "; ".join(drifted[:SHOWN_DRIFTS])
    more = len(drifted) - SHOWN_DRIFTS
    rest = f"; and {more} more (every one: {path})" if more > 0 else ""
    return Drifted(
        f"the world drifted since the plan was made, {len(drifted)} target(s): {shown}{rest}",
        list(drifted), target=f"plan of {playbook}",
        hint="plan again, or pass --skip-drifted to apply the rest",
    )


def plan_json_lines(planned: Sequence[ChangeRecord]) -> Iterator[str]:
    """``{"changes": [...]}``, one change a line, written as it is made: at 100,000 users the
    whole document as one string would cost hundreds of MB."""
    yield '{"changes": [\n'
    for number, record in enumerate(planned):
        yield ("," if number else "") + json.dumps(record.to_json(), ensure_ascii=False) + "\n"
    yield "]}\n"


def _change_key(change: JsonValue) -> tuple[str, str, str, str, str]:
    data = change if isinstance(change, dict) else {}
    return (str(data.get("step")), str(data.get("target")), str(data.get("action")),
            json.dumps(data.get("before"), sort_keys=True),
            json.dumps(data.get("after"), sort_keys=True))


@dataclass(frozen=True, slots=True)
class Rehearsal:
    """What a rehearsal recorded: the changes, and the manual actions it played."""

    records: list[ChangeRecord]
    manual_actions: list[str]
    elapsed_s: dict[str, float]  # per step id, on the rehearsal's virtual clock
    manual_steps: list[str]  # the steps that asked the operator to act


@dataclass(frozen=True, slots=True)
class Safety:
    """Gates passed before the first change of an apply."""

    max_deletions: int | None = None
    confirm: Confirm | None = None  # None: refuse anything that needs confirmation


def confirmation_text(records: Sequence[ChangeRecord]) -> str:
    """'delete-ad-user: 37 changes on DC1; purge-mailbox: 37 changes on EXCH01' and so on."""
    counts: dict[tuple[str, str, str], int] = {}
    for record in records:
        if record.impact.needs_confirmation:
            key = (record.step, record.impact.value, record.endpoint)
            counts[key] = counts.get(key, 0) + 1
    parts = [
        f"{step} ({impact}): {count} target(s) on {endpoint}"
        for (step, impact, endpoint), count in counts.items()
    ]
    return "; ".join(parts)


class Engine:
    """Entry point for library users: plan, apply and resume playbooks against a world."""

    def __init__(
        self,
        *,
        state_dir: str | os.PathLike[str] = ".remediate",
        retry: RetryPolicy | None = None,
        manual_deadline_s: float = MANUAL_DEADLINE_S,
        subscribers: tuple[Subscriber, ...] = (),
        lock_beside: Path | None = None,
        parallel: int = DEFAULT_PARALLEL,
        lease_container: str | None = None,
        break_lease: Confirm | None = None,
    ) -> None:
        """``lock_beside``: a world file; the organisation's lock is kept beside it, so runs
        against it from any state directory exclude each other. ``parallel``: how many of a
        step's endpoints (Exchange servers) are worked on at a time. ``lease_container``: a
        container of the directory where each apply and resume also takes the organisation's
        lease (``remediate.engine.lease``), so runs from any machine exclude each other;
        ``break_lease`` confirms taking over the lease of a run that is gone (None: never)."""
        self.store = RunStore(Path(state_dir), lock_beside)
        self.lease_container = lease_container
        self.break_lease = break_lease
        self.retry = retry or RetryPolicy()
        self.manual_deadline_s = manual_deadline_s
        self.subscribers = subscribers
        self.parallel = checked_parallel(parallel, "parallel")

    # -- plan ---------------------------------------------------------------------------------

    @paced
    def plan(
        self,
        playbook: AnyPlaybook,
        world: World,
        parameters: Mapping[str, str],
        options: Options | None = None,
        *,
        fingerprint: bool = False,
    ) -> RunResult:
        """Discover and rehearse; ``fingerprint`` also records the state of everything selected
        (what a saved plan is checked against when it is applied later)."""
        params = playbook.parse(parameters)
        events = Events(run_id=None, playbook=playbook.name, mode="plan",
                        subscribers=self.subscribers)
        events.emit(ev.RUN_STARTED, parameters=dict(parameters),
                    organisation=world.organisation)
        try:
            discovery = self._discover(playbook, world, params, events)
        except RemediateError as error:
            events.emit(ev.RUN_FINISHED, state="failed", error=str(error))
            raise
        result = self._result("plan", playbook, parameters, discovery)
        if fingerprint:
            result.fingerprints = fingerprints(world, discovery.selection.scope())
        try:
            rehearsal = self._rehearse(playbook, world, discovery.selection, options, events)
        except RemediateError as error:
            result.state, result.error, result.exit_code = "refused", str(error), EXIT_REFUSED
            events.emit(ev.RUN_FINISHED, state=result.state, error=result.error)
            return result
        result.changes = rehearsal.records
        result.manual_actions = rehearsal.manual_actions
        result.rehearsed_s = rehearsal.elapsed_s
        result.manual_steps = rehearsal.manual_steps
        result.state = "pending" if result.changes else "nothing-to-do"
        result.exit_code = EXIT_PENDING if result.changes else _done(result)
        events.emit(ev.RUN_FINISHED, state=result.state, changes=len(result.changes))
        return result

    def _discover(
        self, playbook: AnyPlaybook, world: World, params: Any, events: Events
    ) -> Discovery[Any]:
        """Discovery only reads, so each read is simply sent again after a transient error."""
        reads = retried_reads(world, self.retry, self._on_discovery_retry(events))
        with reads_at_most(self.parallel):
            return playbook.discover_with_history(reads, params, JournalHistory(self.store))

    def _read_retried(self, world: World, events: Events, read: Callable[[], Read]) -> Read:
        """A read of the discovery phase, run again after a transient error."""
        for attempt in self.retry.retrying(world.clock, self._on_discovery_retry(events)):
            with attempt:
                return read()
        raise AssertionError("unreachable: tenacity re-raises")  # pragma: no cover

    @staticmethod
    def _on_discovery_retry(events: Events) -> Callable[[RetryCallState], None]:
        def on_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            events.emit(ev.STEP_RETRIED, step="discover", phase="discover",
                        attempt=state.attempt_number, error=str(error))

        return on_retry

    def _rehearse(
        self,
        playbook: AnyPlaybook,
        world: World,
        selection: Selection,
        options: Options | None,
        events: Events,
    ) -> Rehearsal:
        copy = world.rehearsal()
        copy.attach_run(None)
        ctx = StepContext(copy, MemoryBackups(), options or Options())
        # The rehearsal plays the operator's manual actions at once (the fakes say how), so a
        # short operator deadline pauses the real run, never the rehearsal.
        executor = Executor(ctx, events, rehearsal=True, retry=self.retry,
                            manual_deadline_s=self.manual_deadline_s, parallel=self.parallel)
        try:
            executor.run(playbook.steps(selection))
            return Rehearsal(executor.records, executor.manual_actions, executor.elapsed_s,
                             executor.manual_steps)
        finally:
            # The copy of the world is garbage now, but held in reference cycles (its backends
            # and their timeline): free it at once, or at 100,000 users it stays beside the
            # world (and the next rehearsal's copy) until the collector's next full pass.
            del executor, ctx, copy
            gc.collect()

    # -- apply --------------------------------------------------------------------------------

    @paced
    def apply(
        self,
        playbook: AnyPlaybook,
        world: World,
        parameters: Mapping[str, str],
        *,
        options: Options | None = None,
        safety: Safety | None = None,
        source: Mapping[str, JsonValue] | None = None,
        on_run_dir: Callable[[Path], None] | None = None,
    ) -> RunResult:
        """Discover, rehearse, pass the safety gates, then apply. ``source`` records where the
        world came from (for resume); ``on_run_dir`` is told the run directory first."""
        params = playbook.parse(parameters)
        return self._run(
            playbook, world, parameters, options or Options(), safety or Safety(),
            source=source, on_run_dir=on_run_dir,
            select=lambda events: self._discover(playbook, world, params, events),
        )

    @paced
    def apply_saved(
        self,
        plan: SavedPlan,
        world: World,
        playbooks: Mapping[str, AnyPlaybook],
        *,
        safety: Safety | None = None,
        skip_drifted: bool = False,
        max_age_s: float = 24 * 3600.0,
        source: Mapping[str, JsonValue] | None = None,
        on_run_dir: Callable[[Path], None] | None = None,
    ) -> RunResult:
        """Apply exactly an approved plan: refuse (exit 3) where a target drifted since it was
        planned, naming target, attribute, planned and current value; with ``skip_drifted``
        leave those targets out and apply the rest."""
        playbook = playbooks.get(plan.playbook)
        if playbook is None:
            raise InputError(f"unknown playbook {plan.playbook!r}", target="plan")
        if plan.organisation != world.organisation:
            raise Refused(f"the plan is for organisation {plan.organisation!r}, not "
                          f"{world.organisation!r}", target="plan",
                          hint="apply it against the organisation it was made for")
        playbook.parse(plan.parameters)  # checked as the command line checks them
        selection = loaded_selection(playbook, plan.selection, "the plan")
        drifted = drifts(plan.fingerprints, fingerprints(world, selection.scope()))
        if drifted:
            selection = selection.without({drift.target for drift in drifted})
        warnings = []
        age = (datetime.now(UTC) - plan.created).total_seconds()
        if age > max_age_s:
            warnings.append(f"the plan is {age / 3600:.1f} hours old (over "
                            f"{max_age_s / 3600:.1f}); the fingerprints still held")
        chosen = selection

        def select(events: Events) -> Discovery[Any]:
            if drifted and not skip_drifted:  # refused inside the run: it keeps the full list
                run_dir = self.store.runs_dir / str(events.run_id)
                raise drift_refusal(plan.playbook, [str(drift) for drift in drifted], run_dir)
            return Discovery(chosen)

        def expect(planned: Sequence[ChangeRecord]) -> None:
            check_against_plan(plan, planned, exact=not drifted)

        result = self._run(
            playbook, world, plan.parameters, Options.from_json(plan.options),
            safety or Safety(), source=source or plan.source, on_run_dir=on_run_dir,
            select=select, expect=expect,
        )
        result.warnings = warnings
        result.skipped = [str(drift) for drift in drifted]
        return result

    def _run(
        self,
        playbook: AnyPlaybook,
        world: World,
        parameters: Mapping[str, str],
        options: Options,
        safety: Safety,
        *,
        source: Mapping[str, JsonValue] | None,
        on_run_dir: Callable[[Path], None] | None,
        select: Callable[[Events], Discovery[Any]],
        expect: Callable[[Sequence[ChangeRecord]], None] | None = None,
    ) -> RunResult:
        run_id = new_run_id(playbook.name, datetime.now(UTC))
        with self.store.lock(world.organisation, run_id) as lock, \
                self._lease(world, run_id) as lease:
            run_dir = self.store.create(run_id)
            if on_run_dir:
                on_run_dir(run_dir)
            journal = Journal(run_dir / "journal.jsonl")
            events = self._events(run_id, playbook, journal, lease)
            events.emit(
                ev.RUN_STARTED,
                parameters=dict(parameters),
                options=options.to_json(),
                organisation=world.organisation,
                source=dict(source or {}),
            )
            abandoned = self._lock_abandoned(lock, events)
            broken = self._lease_broken(lease, events)
            events.checkpoint()
            result = self._warned(abandoned, self._warned(broken, self._guarded(
                journal, events, lambda: self._apply_new(
                    playbook=playbook, world=world, select=select, expect=expect,
                    parameters=parameters, options=options, safety=safety, run_id=run_id,
                    run_dir=run_dir, events=events))))
        return self._lease_problem(lease, result)

    def _apply_new(
        self,
        *,
        playbook: AnyPlaybook,
        world: World,
        select: Callable[[Events], Discovery[Any]],
        expect: Callable[[Sequence[ChangeRecord]], None] | None,
        parameters: Mapping[str, str],
        options: Options,
        safety: Safety,
        run_id: str,
        run_dir: Path,
        events: Events,
    ) -> RunResult:
        discovery = select(events)
        result = self._result("apply", playbook, parameters, discovery,
                              run_id=run_id, run_dir=run_dir)
        events.emit(
            ev.RUN_DISCOVERED,
            selection=discovery.selection.to_json(),  # made for this line only
            summary=dict(discovery.selection.summary()),
            findings=[finding.to_json() for finding in discovery.findings],
            # Every write of this run goes to this DC.
            writable_dc=self._read_retried(world, events, world.directory.writable_dc),
        )
        events.checkpoint()
        try:
            rehearsal = self._rehearse(
                playbook, world, discovery.selection, options,
                Events(run_id=run_id, playbook=playbook.name, mode="plan"),
            )
        except StepFailed as failure:
            raise Refused(
                f"the rehearsal says this run would fail, so nothing was changed: {failure}",
                target=f"playbook {playbook.name}",
                hint="plan shows the details; fix the cause or narrow the scope",
            ) from failure
        planned = result.planned = rehearsal.records
        result.rehearsed_s = rehearsal.elapsed_s
        result.manual_steps = rehearsal.manual_steps
        if expect is not None:
            expect(planned)
        write_durably(run_dir / "plan.json", plan_json_lines(planned))
        events.emit(ev.RUN_PLANNED, changes=len(planned))
        check_free_space(run_dir)
        self._check_safety(planned, safety)
        events.emit(ev.RUN_APPROVED, changes=len(planned))
        events.checkpoint()
        return self._execute(playbook=playbook, world=world, selection=discovery.selection,
                             options=options, run_dir=run_dir, events=events, result=result,
                             completed=(), planned=planned)

    def _check_safety(self, planned: Sequence[ChangeRecord], safety: Safety) -> None:
        deletions = sum(record.deletes for record in planned)
        if safety.max_deletions is not None and deletions > safety.max_deletions:
            raise Refused(
                f"the plan deletes {deletions} objects or mailboxes, over the budget of "
                f"{safety.max_deletions}",
                target="max_deletions",
                hint="narrow the scope, or raise the budget (--max-deletions) if intended",
            )
        text = confirmation_text(planned)
        if text and (safety.confirm is None or not safety.confirm(text)):
            raise Refused(
                f"not confirmed: {text}",
                target="confirmation",
                hint="nothing was changed; to go ahead, answer yes at the prompt or pass --yes",
            )

    def _execute(
        self,
        *,
        playbook: AnyPlaybook,
        world: World,
        selection: Selection,
        options: Options,
        run_dir: Path,
        events: Events,
        result: RunResult,
        completed: Sequence[str],
        planned: Sequence[ChangeRecord] = (),
        in_doubt: Mapping[tuple[str, str], ChangeRecord] | None = None,
    ) -> RunResult:
        world.attach_run(run_dir)
        ctx = StepContext(world, DirectoryBackups(run_dir), options)
        executor = Executor(ctx, events, rehearsal=False, retry=self.retry,
                            manual_deadline_s=self.manual_deadline_s, completed=completed,
                            planned=planned, in_doubt=in_doubt, parallel=self.parallel)
        try:
            executor.run(playbook.steps(selection))
        finally:
            result.changes = executor.records
            result.manual_actions = executor.manual_actions
        result.state = "done"
        result.exit_code = _done(result)
        events.emit(ev.RUN_FINISHED, state="done", changes=len(result.changes))
        return result

    def _guarded(
        self, journal: Journal, events: Events, body: Callable[[], RunResult]
    ) -> RunResult:
        """Turn errors into a journaled, resumable state and an exit code. A crash (a
        BaseException that is not Ctrl-C) leaves the journal as a real crash would."""
        try:
            result = body()
        except RunPaused as paused:
            events.emit(ev.RUN_PAUSED, step=paused.step, instructions=paused.instructions)
            journal.close()
            raise
        except RemediateError as error:
            state = "refused" if isinstance(error, Refused) else "failed"
            events.emit(ev.RUN_FINISHED, state=state, error=str(error))
            journal.close()
            raise
        except KeyboardInterrupt:
            events.emit(ev.RUN_FINISHED, state="interrupted")
            journal.close()
            raise
        except Exception:
            journal.close()
            raise
        except BaseException:
            journal.abandon()
            raise
        journal.close()
        return result

    # -- resume -------------------------------------------------------------------------------

    @paced
    def resume(
        self,
        run_id: str,
        world: World,
        playbooks: Mapping[str, AnyPlaybook],
        *,
        on_run_dir: Callable[[Path], None] | None = None,
    ) -> RunResult:
        """Continue a run; ``on_run_dir`` is told its directory once the lock is held."""
        run_dir = self.store.path(run_id)
        state = load_run_state(run_dir)
        playbook = playbooks.get(state.playbook)
        if playbook is None:
            raise InputError(f"unknown playbook {state.playbook!r}", target=f"run {run_id}")
        if not state.approved:
            raise Refused(
                "this run stopped before it passed its safety gates; nothing was changed",
                target=f"run {run_id}",
                hint="start a new apply instead of resuming",
            )
        if state.finished:
            # Nothing left to do: the servers, the run and its journal are left alone.
            result = self._result("resume", playbook, state.parameters,
                                  Discovery(loaded_selection(playbook, state.selection,
                                                             f"run {run_id}")),
                                  run_id=run_id, run_dir=run_dir)
            result.state = "done"
            return result
        self._check_pinned_dc(state, world)
        with self.store.lock(world.organisation, run_id) as lock, \
                self._lease(world, run_id) as lease:
            remove_temporary(run_dir)  # left by a killed process; this one holds the run now
            if on_run_dir:
                on_run_dir(run_dir)
            journal = Journal(run_dir / "journal.jsonl")
            events = self._events(run_id, playbook, journal, lease)
            if state.truncated_line is not None:
                events.emit(ev.RUN_JOURNAL_TRUNCATED, line=state.truncated_line)
            events.emit(ev.RUN_RESUMED, completed=list(state.completed))
            abandoned = self._lock_abandoned(lock, events)
            broken = self._lease_broken(lease, events)
            events.checkpoint()

            def body() -> RunResult:
                discovery = Discovery(loaded_selection(playbook, state.selection,
                                                       f"run {run_id}"))
                result = self._result("resume", playbook, state.parameters, discovery,
                                      run_id=run_id, run_dir=run_dir)
                if state.truncated_line is not None:
                    result.warnings.append(
                        f"the journal's line {state.truncated_line} was cut off mid-write (the "
                        "process died while writing it); it was dropped and the run continued "
                        "from the last complete record, re-observing what that step had done")
                options = state.options
                in_doubt = planned_records(run_dir / "plan.json", state.in_doubt)
                return self._execute(playbook=playbook, world=world,
                                     selection=discovery.selection, options=options,
                                     run_dir=run_dir, events=events, result=result,
                                     completed=state.completed, in_doubt=in_doubt)

            result = self._warned(abandoned, self._warned(
                broken, self._guarded(journal, events, body)))
        return self._lease_problem(lease, result)

    @staticmethod
    def _check_pinned_dc(state: RunState, world: World) -> None:
        """A resumed run writes where it wrote before: its waits watch what that DC sends."""
        now = world.directory.writable_dc()
        if state.writable_dc is not None and now.lower() != state.writable_dc.lower():
            raise Refused(
                f"this run wrote to {state.writable_dc}, but the directory now pins {now} for "
                "writes; nothing was changed",
                target=f"run {state.run_id}",
                hint=f'set writable_dc = "{state.writable_dc}" in the inventory\'s [directory] '
                "and resume again",
            )

    # -- helpers ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lease(self, world: World, run_id: str) -> Iterator[OrganisationLease | None]:
        """The organisation's lease in the directory, with ``lease_container``; taken after
        the state directory's lock and before the run directory exists, so a refused run
        leaves nothing behind. Released at the end, unless the run stopped after changes could
        be made: then kept, stopped, for its resume. A crash leaves it to expire."""
        if self.lease_container is None:
            yield None
            return
        lease = OrganisationLease(
            world.directory, self.lease_container, organisation=world.organisation,
            run_id=run_id, clock=world.clock, retry=self.retry, break_lease=self.break_lease)
        lease.acquire()
        try:
            yield lease
        except (Exception, KeyboardInterrupt):
            lease.release(keep=lease.approved)
            raise
        lease.release(keep=False)

    @staticmethod
    def _lease_broken(lease: OrganisationLease | None, events: Events) -> str | None:
        """A warning if this run took the lease over from another (``--break-lease``)."""
        if lease is None or lease.broke is None:
            return None
        events.emit(ev.RUN_LEASE_BROKEN, lease=lease.dn, previous=lease.broke)
        return (f"this run took over organisation {lease.organisation}'s lease from "
                f"{lease.broke} (--break-lease)")

    @staticmethod
    def _lease_problem(lease: OrganisationLease | None, result: RunResult) -> RunResult:
        if lease is not None and lease.problem is not None:
            result.warnings.append(lease.problem)
        return result

    @staticmethod
    def _lock_abandoned(lock: OrganisationLock, events: Events) -> str | None:
        """A warning if the organisation's lock was last held by a run that died holding it
        (the kernel released it; the file still names that run), else None."""
        if lock.left_by is None:
            return None
        events.emit(ev.RUN_LOCK_ABANDONED, left_by=lock.left_by)
        ended = (f"the previous holder of organisation {lock.organisation}'s lock "
                 f"({lock.left_by}) ended without releasing it: it crashed or was killed")
        if f"run {lock.run_id}," in lock.left_by:
            return f"{ended}; this resume continues it"
        return (f"{ended}. If it did not finish, 'remediate runs' lists it and "
                "'remediate resume RUN_ID' continues it")

    @staticmethod
    def _warned(warning: str | None, result: RunResult) -> RunResult:
        if warning is not None:
            result.warnings.insert(0, warning)
        return result

    def _events(
        self, run_id: str, playbook: AnyPlaybook, journal: Journal,
        lease: OrganisationLease | None = None,
    ) -> Events:
        # The lease renews itself on the run's events (and stops the run if it was lost).
        extra: tuple[Subscriber, ...] = (lease,) if lease is not None else ()
        return Events(run_id=run_id, playbook=playbook.name, mode="apply", journal=journal,
                      subscribers=self.subscribers + extra)

    @staticmethod
    def _result(
        mode: str,
        playbook: AnyPlaybook,
        parameters: Mapping[str, str],
        discovery: Discovery[Any],
        *,
        run_id: str | None = None,
        run_dir: Path | None = None,
    ) -> RunResult:
        return RunResult(
            mode=mode,
            playbook=playbook.name,
            state="started",
            parameters=dict(parameters),
            selected=discovery.selection,
            selection_summary=dict(discovery.selection.summary()),
            findings=list(discovery.findings),
            run_id=run_id,
            run_dir=str(run_dir) if run_dir else None,
        )
