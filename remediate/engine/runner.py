"""Plan, apply and resume: the run lifecycle around the executor.

A plan is a rehearsal: discovery reads the world, then the playbook runs against a fake copy
of it and the changes recorded are the plan. Apply rehearses the same way first, so every safety
gate (WouldFail, budget, confirmation) is passed before the first real change.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from tenacity import RetryCallState

from remediate.engine import events as ev
from remediate.engine.backups import DirectoryBackups, MemoryBackups, write_durably
from remediate.engine.changes import ChangeRecord, JsonValue
from remediate.engine.concurrent_reads import reads_at_most
from remediate.engine.events import Events, Subscriber
from remediate.engine.execute import Executor
from remediate.engine.fingerprint import drifts, fingerprints
from remediate.engine.history import JournalHistory
from remediate.engine.journal import Journal, OrganisationLock, RunStore, new_run_id
from remediate.engine.lease import OrganisationLease
from remediate.engine.leftout import check_left_out
from remediate.engine.listener import RunListener
from remediate.engine.parallel import DEFAULT_PARALLEL, checked_parallel
from remediate.engine.planfile import SavedPlan
from remediate.engine.playbook import Discovery, Playbook, Selection
from remediate.engine.private import remove_temporary
from remediate.engine.reads import retried_reads
from remediate.engine.result import (
    EXIT_DONE,
    EXIT_ERROR,
    EXIT_LEFT_OUT,
    EXIT_PENDING,
    EXIT_REFUSED,
    Ending,
    RunResult,
    done_code,
    ending,
)
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

__all__ = [
    "EXIT_DONE",
    "EXIT_ERROR",
    "EXIT_LEFT_OUT",
    "EXIT_PENDING",
    "EXIT_REFUSED",
    "Engine",
    "RunResult",
    "RunState",
    "Safety",
    "load_run_state",
]

AnyPlaybook = Playbook[Any, Any]
Confirm = Callable[[str], bool]

# How long a manual step is waited for: the 2000/2003 stores also run the cleanup agent
# nightly by themselves, so 25 hours always covers one pass.
MANUAL_DEADLINE_S = 25 * 3600.0

Read = TypeVar("Read")


@dataclass(slots=True)
class _Run:
    """An apply or resume while it goes: what its result will say, however it ends."""

    mode: str
    playbook: str
    parameters: dict[str, str]
    run_id: str
    run_dir: Path
    discovery: Discovery[Any] | None = None
    rehearsal: Rehearsal | None = None
    executor: Executor | None = None
    approved: bool = False
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def result(self, stop: BaseException | None = None) -> RunResult:
        """Done, or stopped by ``stop``: the state, exit code and message it earns."""
        discovery, executor = self.discovery, self.executor
        findings = list(discovery.findings) if discovery else []
        manual = executor.manual_actions if executor else []
        if stop is None:
            state, code, error = "done", done_code(findings), None
        else:
            end = ending(stop)
            state, code, error = end.state, end.exit_code, end.error
            if isinstance(stop, RunPaused) and stop.instructions not in manual:
                manual = [*manual, stop.instructions]
            _forget_frames(stop)
        rehearsal = self.rehearsal
        return RunResult(
            mode=self.mode,
            playbook=self.playbook,
            state=state,
            parameters=dict(self.parameters),
            selected=discovery.selection if discovery else None,
            selection_summary=dict(discovery.selection.summary()) if discovery else {},
            findings=findings,
            changes=executor.records if executor else [],
            planned=rehearsal.records if rehearsal else [],
            manual_actions=manual,
            warnings=[
                *self.warnings,
                *(w for w in (executor.warnings if executor else []) if w not in self.warnings),
            ],
            skipped=list(self.skipped),
            drifted=list(stop.drifts) if isinstance(stop, Drifted) else [],
            run_id=self.run_id,
            run_dir=str(self.run_dir),
            error=error,
            exit_code=code,
            rehearsed_s=rehearsal.elapsed_s if rehearsal else {},
            manual_steps=rehearsal.manual_steps if rehearsal else [],
            approved=self.approved,
            stop=stop,
        )


def _forget_frames(stop: BaseException) -> None:
    """A result outlives its run: the exception it keeps must not keep the run's frames (and
    with them the world's copies and every record) alive through its traceback."""
    seen: set[int] = set()
    error: BaseException | None = stop
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        error = error.__cause__ or error.__context__


def check_against_plan(plan: SavedPlan, planned: Sequence[ChangeRecord], *, exact: bool) -> None:
    """The rehearsal now must do what was approved: the same changes, or (drifted targets
    left out) nothing on a target the plan did not list."""
    approved = [_change_key(change) for change in plan.changes]
    now = [_change_key(record.to_json()) for record in planned]
    if exact:
        if now == approved:
            return
        difference = next((key for key in now if key not in approved), None) or next(
            (key for key in approved if key not in now), None
        )
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
            "from its plan); nothing was changed",
            target=str(run_dir),
            hint="free some space, or keep runs elsewhere with --state-dir, then apply again",
        )


def loaded_selection(playbook: AnyPlaybook, data: JsonValue, where: str) -> Selection:
    """A selection read back from a plan file or a journal, an :class:`InputError` if damaged
    (a hand-edited file whose hash was made again, a selection of another playbook)."""
    try:
        selection: Selection = playbook.load_selection(data)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        raise InputError(
            f"its selection is not one of playbook {playbook.name} ({type(error).__name__}: "
            f"{error})",
            target=where,
            hint="plan again; the selection is made by plan",
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
        list(drifted),
        target=f"plan of {playbook}",
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
    return (
        str(data.get("step")),
        str(data.get("target")),
        str(data.get("action")),
        json.dumps(data.get("before"), sort_keys=True),
        json.dumps(data.get("after"), sort_keys=True),
    )


@dataclass(frozen=True, slots=True)
class Rehearsal:
    """What a rehearsal recorded: the changes, and the manual actions it played."""

    records: list[ChangeRecord]
    manual_actions: list[str]
    elapsed_s: dict[str, float]  # per step id, on the rehearsal's virtual clock
    manual_steps: list[str]  # the steps that asked the operator to act
    warnings: list[str]  # what the steps said about targets they left alone


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
        listeners: tuple[RunListener, ...] = (),
        subscribers: tuple[Subscriber, ...] = (),
        lock_beside: Path | None = None,
        parallel: int = DEFAULT_PARALLEL,
        lease_container: str | None = None,
        break_lease: Confirm | None = None,
    ) -> None:
        """``listeners``: told of the run as it happens (``engine.listener``); ``subscribers``
        (transitional, for tests and benches): given each event's journal record.
        ``lock_beside``: a world file; the organisation's lock is kept beside it, so runs
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
        self.listeners = listeners
        self.subscribers = subscribers
        self.parallel = checked_parallel(parallel, "parallel")

    # -- plan ---------------------------------------------------------------------------------

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
        check_left_out(world, (options or Options()).leave_out_dcs)
        events = Events(
            run_id=None,
            playbook=playbook.name,
            mode="plan",
            listeners=self.listeners,
            subscribers=self.subscribers,
        )
        events.run_started(parameters=dict(parameters), organisation=world.organisation)
        try:
            discovery = self._discover(playbook, world, params, events)
        except (RemediateError, KeyboardInterrupt) as error:
            end = ending(error)
            events.run_finished(end.state, error=end.error)
            if isinstance(error, InputError):
                raise
            _forget_frames(error)
            return RunResult(
                "plan",
                playbook.name,
                end.state,
                dict(parameters),
                error=end.error,
                exit_code=end.exit_code,
                stop=error,
            )
        found = fingerprints(world, discovery.selection.scope()) if fingerprint else {}
        started = RunResult(
            "plan",
            playbook.name,
            "started",
            dict(parameters),
            selection_summary=dict(discovery.selection.summary()),
            findings=list(discovery.findings),
            fingerprints=found,
            selected=discovery.selection,
        )
        try:
            rehearsal = self._rehearse(playbook, world, discovery.selection, options, events)
        except (RemediateError, KeyboardInterrupt) as error:
            # Whatever stops a rehearsal refuses the run it previews; Ctrl-C only stops it.
            end = (
                ending(error)
                if isinstance(error, KeyboardInterrupt)
                else Ending("refused", EXIT_REFUSED, str(error))
            )
            events.run_finished(end.state, error=end.error)
            _forget_frames(error)
            return replace(
                started, state=end.state, error=end.error, exit_code=end.exit_code, stop=error
            )
        changes = rehearsal.records
        state = "pending" if changes else "nothing-to-do"
        events.run_finished(state, changes=len(changes))
        return replace(
            started,
            state=state,
            changes=changes,
            manual_actions=rehearsal.manual_actions,
            rehearsed_s=rehearsal.elapsed_s,
            manual_steps=rehearsal.manual_steps,
            warnings=[*started.warnings, *rehearsal.warnings],
            exit_code=EXIT_PENDING if changes else done_code(started.findings),
        )

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
            events.retried("discover", "discover", state.attempt_number, str(error))

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
        executor = Executor(
            ctx,
            events,
            rehearsal=True,
            retry=self.retry,
            manual_deadline_s=self.manual_deadline_s,
            parallel=self.parallel,
        )
        executor.run(playbook.steps(selection))
        return Rehearsal(
            executor.records,
            executor.manual_actions,
            executor.elapsed_s,
            executor.manual_steps,
            executor.warnings,
        )

    # -- apply --------------------------------------------------------------------------------

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
            playbook,
            world,
            parameters,
            options or Options(),
            safety or Safety(),
            source=source,
            on_run_dir=on_run_dir,
            select=lambda events: self._discover(playbook, world, params, events),
        )

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
            raise Refused(
                f"the plan is for organisation {plan.organisation!r}, not {world.organisation!r}",
                target="plan",
                hint="apply it against the organisation it was made for",
            )
        playbook.parse(plan.parameters)  # checked as the command line checks them
        selection = loaded_selection(playbook, plan.selection, "the plan")
        drifted = drifts(plan.fingerprints, fingerprints(world, selection.scope()))
        if drifted:
            selection = selection.without({drift.target for drift in drifted})
        warnings = []
        age = (datetime.now(UTC) - plan.created).total_seconds()
        if age > max_age_s:
            warnings.append(
                f"the plan is {age / 3600:.1f} hours old (over "
                f"{max_age_s / 3600:.1f}); the fingerprints still held"
            )
        chosen = selection

        def select(events: Events) -> Discovery[Any]:
            if drifted and not skip_drifted:  # refused inside the run: it keeps the full list
                run_dir = self.store.runs_dir / str(events.run_id)
                raise drift_refusal(plan.playbook, [str(drift) for drift in drifted], run_dir)
            return Discovery(chosen)

        def expect(planned: Sequence[ChangeRecord]) -> None:
            check_against_plan(plan, planned, exact=not drifted)

        return self._run(
            playbook,
            world,
            plan.parameters,
            Options.from_json(plan.options),
            safety or Safety(),
            source=source or plan.source,
            on_run_dir=on_run_dir,
            select=select,
            expect=expect,
            warnings=warnings,
            skipped=[str(drift) for drift in drifted],
        )

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
        warnings: Sequence[str] = (),
        skipped: Sequence[str] = (),
    ) -> RunResult:
        check_left_out(world, options.leave_out_dcs)
        run_id = new_run_id(playbook.name, datetime.now(UTC))
        with (
            self.store.lock(world.organisation, run_id) as lock,
            self._lease(world, run_id) as lease,
        ):
            run_dir = self.store.create(run_id)
            if on_run_dir:
                on_run_dir(run_dir)
            journal = Journal(run_dir / "journal.jsonl")
            events = self._events(run_id, playbook, journal, lease)
            events.run_started(
                parameters=dict(parameters),
                options=options.to_json(),
                organisation=world.organisation,
                source=dict(source or {}),
            )
            run = _Run(
                "apply", playbook.name, dict(parameters), run_id, run_dir, skipped=list(skipped)
            )
            run.warnings += self._taken_over(lock, lease, events)
            run.warnings += warnings
            events.checkpoint()
            result = self._guarded(
                run,
                journal,
                events,
                lambda: self._apply_new(
                    run,
                    playbook=playbook,
                    world=world,
                    select=select,
                    expect=expect,
                    options=options,
                    safety=safety,
                    events=events,
                ),
            )
            self._keep_lease_for_resume(lease, result)
        return self._lease_problem(lease, result)

    def _apply_new(
        self,
        run: _Run,
        *,
        playbook: AnyPlaybook,
        world: World,
        select: Callable[[Events], Discovery[Any]],
        expect: Callable[[Sequence[ChangeRecord]], None] | None,
        options: Options,
        safety: Safety,
        events: Events,
    ) -> None:
        discovery = run.discovery = select(events)
        events.discovered(
            discovery.selection.summary(),
            selection=discovery.selection.to_json(),  # made for this line only
            findings=[finding.to_json() for finding in discovery.findings],
            # Every write of this run goes to this DC.
            writable_dc=self._read_retried(world, events, world.directory.writable_dc),
        )
        events.checkpoint()
        try:
            rehearsal = run.rehearsal = self._rehearse(
                playbook,
                world,
                discovery.selection,
                options,
                Events(run_id=run.run_id, playbook=playbook.name, mode="plan"),
            )
        except StepFailed as failure:
            raise Refused(
                f"the rehearsal says this run would fail, so nothing was changed: {failure}",
                target=f"playbook {playbook.name}",
                hint="plan shows the details; fix the cause or narrow the scope",
            ) from failure
        planned = rehearsal.records
        if expect is not None:
            expect(planned)
        write_durably(run.run_dir / "plan.json", plan_json_lines(planned))
        events.planned(len(planned))
        check_free_space(run.run_dir)
        self._check_safety(planned, safety)
        run.approved = True
        events.approved(len(planned))
        events.checkpoint()
        self._execute(
            run,
            playbook=playbook,
            world=world,
            options=options,
            events=events,
            completed=(),
            planned=planned,
        )

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
        run: _Run,
        *,
        playbook: AnyPlaybook,
        world: World,
        options: Options,
        events: Events,
        completed: Sequence[str],
        planned: Sequence[ChangeRecord] = (),
        in_doubt: Mapping[tuple[str, str], ChangeRecord] | None = None,
    ) -> None:
        assert run.discovery is not None, "discovered (or read back) before anything is run"
        world.attach_run(run.run_dir)
        ctx = StepContext(world, DirectoryBackups(run.run_dir), options)
        executor = run.executor = Executor(
            ctx,
            events,
            rehearsal=False,
            retry=self.retry,
            manual_deadline_s=self.manual_deadline_s,
            completed=completed,
            planned=planned,
            in_doubt=in_doubt,
            parallel=self.parallel,
        )
        executor.run(playbook.steps(run.discovery.selection))
        events.run_finished("done", changes=len(executor.records))

    @staticmethod
    def _guarded(
        run: _Run, journal: Journal, events: Events, body: Callable[[], None]
    ) -> RunResult:
        """Run ``body``; however it ends, journal that ending and return the run's result.
        A crash (a BaseException that is not Ctrl-C) leaves the journal as a real crash would,
        and a programming error is raised."""
        try:
            body()
        except RunPaused as paused:
            events.paused(paused.step, paused.instructions)
            journal.close()
            return run.result(paused)
        except (RemediateError, KeyboardInterrupt) as error:
            if isinstance(error, KeyboardInterrupt):
                events.run_finished("interrupted")
            else:
                events.run_finished(ending(error).state, error=str(error))
            journal.close()
            return run.result(error)
        except OSError as error:  # a full disk: the journal may not take another line
            journal.close()
            return run.result(error)
        except Exception:
            journal.close()
            raise
        except BaseException:
            journal.abandon()
            raise
        journal.close()
        return run.result()

    # -- resume -------------------------------------------------------------------------------

    def resume(
        self,
        run_id: str,
        world: World,
        playbooks: Mapping[str, AnyPlaybook],
        *,
        on_run_dir: Callable[[Path], None] | None = None,
        leave_out_dcs: Sequence[str] = (),
    ) -> RunResult:
        """Continue a run; ``on_run_dir`` is told its directory once the lock is held;
        ``leave_out_dcs``: DCs found down since, left out of its waits from now on."""
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
            selection = loaded_selection(playbook, state.selection, f"run {run_id}")
            return RunResult(
                "resume",
                playbook.name,
                "done",
                dict(state.parameters),
                selected=selection,
                selection_summary=dict(selection.summary()),
                run_id=run_id,
                run_dir=str(run_dir),
                approved=True,
            )
        self._check_pinned_dc(state, world)
        check_left_out(world, leave_out_dcs)
        with (
            self.store.lock(world.organisation, run_id) as lock,
            self._lease(world, run_id) as lease,
        ):
            remove_temporary(run_dir)  # left by a killed process; this one holds the run now
            if on_run_dir:
                on_run_dir(run_dir)
            journal = Journal(run_dir / "journal.jsonl")
            events = self._events(run_id, playbook, journal, lease)
            if state.truncated_line is not None:
                events.journal_truncated(state.truncated_line)
            events.resumed(state.completed, leave_out_dcs)
            run = _Run(
                "resume", playbook.name, dict(state.parameters), run_id, run_dir, approved=True
            )
            run.warnings += self._taken_over(lock, lease, events)
            events.checkpoint()

            def body() -> None:
                run.discovery = Discovery(
                    loaded_selection(playbook, state.selection, f"run {run_id}")
                )
                if state.truncated_line is not None:
                    run.warnings.append(
                        f"the journal's line {state.truncated_line} was cut off mid-write (the "
                        "process died while writing it); it was dropped and the run continued "
                        "from the last complete record, re-observing what that step had done"
                    )
                in_doubt = planned_records(run_dir / "plan.json", state.in_doubt)
                options = replace(
                    state.options,
                    leave_out_dcs=tuple(
                        dict.fromkeys((*state.options.leave_out_dcs, *leave_out_dcs))
                    ),
                )
                self._execute(
                    run,
                    playbook=playbook,
                    world=world,
                    options=options,
                    events=events,
                    completed=state.completed,
                    in_doubt=in_doubt,
                )

            result = self._guarded(run, journal, events, body)
            self._keep_lease_for_resume(lease, result)
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
            world.directory,
            self.lease_container,
            organisation=world.organisation,
            run_id=run_id,
            clock=world.clock,
            retry=self.retry,
            break_lease=self.break_lease,
        )
        lease.acquire()
        try:
            yield lease
        except (Exception, KeyboardInterrupt):
            lease.release(keep=lease.approved)
            raise
        lease.release(keep=lease.approved and lease.stopped)

    @staticmethod
    def _keep_lease_for_resume(lease: OrganisationLease | None, result: RunResult) -> None:
        """A run that stopped (paused, failed, interrupted) keeps its lease for its resume."""
        if lease is not None:
            lease.stopped = result.state != "done"

    @staticmethod
    def _lease_broken(lease: OrganisationLease | None, events: Events) -> str | None:
        """A warning if this run took the lease over from another (``--break-lease``)."""
        if lease is None or lease.broke is None:
            return None
        events.emit(ev.RUN_LEASE_BROKEN, lease=lease.dn, previous=lease.broke)
        return (
            f"this run took over organisation {lease.organisation}'s lease from "
            f"{lease.broke} (--break-lease)"
        )

    @staticmethod
    def _lease_problem(lease: OrganisationLease | None, result: RunResult) -> RunResult:
        if lease is None or lease.problem is None:
            return result
        return replace(result, warnings=[*result.warnings, lease.problem])

    def _taken_over(
        self, lock: OrganisationLock, lease: OrganisationLease | None, events: Events
    ) -> list[str]:
        """What the operator is told about a lock or lease this run took over from a dead one."""
        found = (self._lock_abandoned(lock, events), self._lease_broken(lease, events))
        return [warning for warning in found if warning is not None]

    @staticmethod
    def _lock_abandoned(lock: OrganisationLock, events: Events) -> str | None:
        """A warning if the organisation's lock was last held by a run that died holding it
        (the kernel released it; the file still names that run), else None."""
        if lock.left_by is None:
            return None
        events.lock_abandoned(lock.left_by)
        ended = (
            f"the previous holder of organisation {lock.organisation}'s lock "
            f"({lock.left_by}) ended without releasing it: it crashed or was killed"
        )
        if f"run {lock.run_id}," in lock.left_by:
            return f"{ended}; this resume continues it"
        return (
            f"{ended}. If it did not finish, 'remediate runs' lists it and "
            "'remediate resume RUN_ID' continues it"
        )

    def _events(
        self,
        run_id: str,
        playbook: AnyPlaybook,
        journal: Journal,
        lease: OrganisationLease | None = None,
    ) -> Events:
        # The lease renews itself on the run's events (and stops the run if it was lost).
        extra: tuple[RunListener, ...] = (lease,) if lease is not None else ()
        return Events(
            run_id=run_id,
            playbook=playbook.name,
            mode="apply",
            journal=journal,
            listeners=self.listeners + extra,
            subscribers=self.subscribers,
        )
