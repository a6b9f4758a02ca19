"""Structured events, one schema for plan and apply.

Every event carries ``run_id``, ``playbook``, ``mode``, ``step`` and ``target`` (None where it does
not apply). They go to the run's listeners (``engine.listener``: typed hooks, e.g. progress bars),
to the run's journal, the one place they are written down as JSON, and to structlog once
an application has configured it (the command line does); otherwise to the standard library's
``logging.getLogger("remediate")``, which shows nothing unless the application configures
logging: a library prints nothing of its own accord.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

import structlog

from remediate.engine.changes import ChangeRecord, JsonValue
from remediate.engine.journal import Journal, JournalRecord
from remediate.engine.listener import RunInfo, RunListener

RUN_STARTED = "run.started"
RUN_DISCOVERED = "run.discovered"
RUN_PLANNED = "run.planned"
RUN_APPROVED = "run.approved"
RUN_RESUMED = "run.resumed"
RUN_JOURNAL_TRUNCATED = "run.journal_truncated"
RUN_LOCK_ABANDONED = "run.lock_abandoned"
RUN_LEASE_BROKEN = "run.lease_broken"
RUN_PAUSED = "run.paused"
RUN_FINISHED = "run.finished"
STEP_STARTED = "step.started"
STEP_PLANNED = "step.planned"
STEP_APPLYING = "step.applying"
STEP_APPLIED = "step.applied"
STEP_VERIFIED = "step.verified"
STEP_RETRIED = "step.retried"
STEP_WAITING = "step.waiting"
STEP_MANUAL = "step.manual"
STEP_FAILED = "step.failed"
STEP_STOPPED = "step.stopped"  # a batch stopped part-way: its targets observed unchanged
STEP_COMPLETED = "step.completed"

# Per-target events are many; people see the step summaries, machines get everything.
_DEBUG_EVENTS = frozenset({STEP_PLANNED, STEP_APPLIED, STEP_WAITING, RUN_DISCOVERED})
_WARNING_EVENTS = frozenset(
    {
        STEP_RETRIED,
        STEP_MANUAL,
        RUN_PAUSED,
        RUN_JOURNAL_TRUNCATED,
        RUN_LOCK_ABANDONED,
        RUN_LEASE_BROKEN,
    }
)
_ERROR_EVENTS = frozenset({STEP_FAILED})

LIBRARY_LOGGER = logging.getLogger("remediate")
# The documented convention for a library: without it, Python's last-resort handler would
# print the engine's warnings (a retry, a manual action) on stderr of any program using it.
LIBRARY_LOGGER.addHandler(logging.NullHandler())


# A listener's own method for an event, with the event's values bound.
Hook = Callable[[RunListener], None]


class Subscriber(Protocol):
    """Transitional: a callable given each event's journal record (a dict). Tests and benches
    that count events still use it; a program listens with a ``RunListener`` instead."""

    def __call__(self, record: JournalRecord, /) -> None: ...


class Events:
    """Emit events to listeners, subscribers, the journal (if any) and structlog. An event a
    listener may act on has a method of its own, which calls the listeners with typed values;
    ``emit`` writes down the rest."""

    def __init__(
        self,
        *,
        run_id: str | None,
        playbook: str,
        mode: str,
        journal: Journal | None = None,
        listeners: tuple[RunListener, ...] = (),
        subscribers: tuple[Subscriber, ...] = (),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.run_id = run_id
        self.playbook = playbook
        self.mode = mode
        self.journal = journal
        self.listeners = listeners
        self.subscribers = subscribers
        self._opened = False
        self._now = now
        # structlog's defaults print every event to stdout: only an application that set it
        # up (structlog.configure) gets events through it.
        self._log = structlog.get_logger("remediate") if structlog.is_configured() else None
        # Batches on several servers emit from several threads: one record at a time, whole,
        # and a checkpoint syncs only whole records.
        self._lock = threading.RLock()

    def emit(
        self,
        event: str,
        *,
        step: str | None = None,
        target: str | None = None,
        hook: Hook | None = None,
        **fields: JsonValue,
    ) -> None:
        """Write ``event`` down; ``hook``: the listeners' own method for it, if they have one."""
        with self._lock:
            self._emit(event, step, target, fields, hook)

    def _emit(
        self,
        event: str,
        step: str | None,
        target: str | None,
        fields: dict[str, JsonValue],
        hook: Hook | None = None,
    ) -> None:
        self._open()
        record: JournalRecord = {
            "event": event,
            "ts": self._now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "run_id": self.run_id,
            "playbook": self.playbook,
            "mode": self.mode,
            "step": step,
            "target": target,
        }
        record.update(fields)
        # Listeners and subscribers first: one that keeps state beside the journal (a world
        # file saved when a step completes) has it on disk before the journal can say the
        # step is done.
        for listener in self.listeners:
            listener.on_event(event)
            if hook is not None:
                hook(listener)
        for subscriber in self.subscribers:
            subscriber(record)
        if self.journal is not None:
            self.journal.append(record)
        level = self._level(event)
        log_fields = {k: v for k, v in record.items() if k not in ("event", "ts")}
        if self._log is not None:
            self._log.log(level, event, **log_fields)
        elif LIBRARY_LOGGER.isEnabledFor(level):
            LIBRARY_LOGGER.log(
                level, "%s %s", event, json.dumps(log_fields, ensure_ascii=False, default=str)
            )

    def _open(self) -> None:
        if not self._opened:
            self._opened = True
            run = RunInfo(self.run_id, self.playbook, self.mode)
            for listener in self.listeners:
                listener.on_run_opened(run)

    # -- the events listeners have a hook for, each called with its typed values --------------

    def run_started(self, **fields: JsonValue) -> None:
        run = RunInfo(self.run_id, self.playbook, self.mode)
        with self._lock:
            self._emit(
                RUN_STARTED, None, None, fields, lambda listener: listener.on_run_started(run)
            )

    def discovered(
        self,
        summary: Mapping[str, int],
        *,
        selection: JsonValue,
        findings: JsonValue,
        writable_dc: str,
    ) -> None:
        self.emit(
            RUN_DISCOVERED,
            selection=selection,
            summary=dict(summary),
            findings=findings,
            writable_dc=writable_dc,
            hook=lambda listener: listener.on_discovered(summary),
        )

    def planned(self, changes: int) -> None:
        self.emit(RUN_PLANNED, changes=changes, hook=lambda listener: listener.on_planned(changes))

    def approved(self, changes: int) -> None:
        self.emit(
            RUN_APPROVED, changes=changes, hook=lambda listener: listener.on_approved(changes)
        )

    def resumed(self, completed: Sequence[str], leave_out_dcs: Sequence[str]) -> None:
        self.emit(
            RUN_RESUMED,
            completed=list[JsonValue](completed),
            leave_out_dcs=list[JsonValue](leave_out_dcs) or None,
            hook=lambda listener: listener.on_resumed(completed),
        )

    def journal_truncated(self, line: int) -> None:
        self.emit(
            RUN_JOURNAL_TRUNCATED,
            line=line,
            hook=lambda listener: listener.on_journal_truncated(line),
        )

    def lock_abandoned(self, left_by: str) -> None:
        self.emit(
            RUN_LOCK_ABANDONED,
            left_by=left_by,
            hook=lambda listener: listener.on_lock_abandoned(left_by),
        )

    def step_started(self, step: str, targets: int) -> None:
        self.emit(
            STEP_STARTED,
            step=step,
            targets=targets,
            hook=lambda listener: listener.on_step_started(step, targets),
        )

    def change(self, record: ChangeRecord, *, applied: bool, settled: bool = False) -> None:
        """A change planned (``applied`` False) or that took effect; ``settled``: one an
        earlier process made without recording it, found done by a resume."""
        extra: dict[str, JsonValue] = {"settled": True} if settled else {}
        self.emit(
            STEP_APPLIED if applied else STEP_PLANNED,
            step=record.step,
            target=record.target,
            label=record.label,
            endpoint=record.endpoint,
            action=record.action,
            impact=record.impact.value,
            before=record.before,
            after=record.after,
            **extra,
            hook=lambda listener: listener.on_change(record),
        )

    def waiting(self, step: str, endpoint: str, outstanding: int, polls: int) -> None:
        self.emit(
            STEP_WAITING,
            step=step,
            endpoint=endpoint,
            outstanding=outstanding,
            polls=polls,
            hook=lambda listener: listener.on_waiting(step, endpoint, outstanding),
        )

    def batch_finished(self, step: str, endpoint: str, changes: int) -> None:
        self.emit(
            STEP_VERIFIED,
            step=step,
            endpoint=endpoint,
            changes=changes,
            hook=lambda listener: listener.on_batch_finished(step, endpoint, changes),
        )

    def retried(self, step: str, phase: str, attempt: int, error: str) -> None:
        self.emit(
            STEP_RETRIED,
            step=step,
            phase=phase,
            attempt=attempt,
            error=error,
            hook=lambda listener: listener.on_retry(step, phase, attempt, error),
        )

    def manual_action(self, step: str, instructions: str) -> None:
        self.emit(
            STEP_MANUAL,
            step=step,
            instructions=instructions,
            hook=lambda listener: listener.on_manual_action(step, instructions),
        )

    def step_failed(self, step: str, target: str | None, error: str) -> None:
        self.emit(
            STEP_FAILED,
            step=step,
            target=target,
            error=error,
            hook=lambda listener: listener.on_step_failed(step, error),
        )

    def step_completed(self, step: str) -> None:
        self.emit(STEP_COMPLETED, step=step, hook=lambda listener: listener.on_step_completed(step))

    def paused(self, step: str, instructions: str) -> None:
        self.emit(
            RUN_PAUSED,
            step=step,
            instructions=instructions,
            hook=lambda listener: listener.on_paused(step, instructions),
        )

    def run_finished(
        self, state: str, *, error: str | None = None, changes: int | None = None
    ) -> None:
        """The journal line carries ``error`` and ``changes`` only where they are known."""
        known: dict[str, JsonValue] = {
            key: value
            for key, value in (("error", error), ("changes", changes))
            if value is not None
        }
        with self._lock:
            self._emit(
                RUN_FINISHED,
                None,
                None,
                {"state": state, **known},
                lambda listener: listener.on_run_finished(state, error),
            )

    def _level(self, event: str) -> int:
        if event in _DEBUG_EVENTS:
            return logging.DEBUG
        if event in _ERROR_EVENTS:
            return logging.ERROR
        if event in _WARNING_EVENTS and self.mode != "plan":
            return logging.WARNING
        return logging.INFO

    def checkpoint(self) -> None:
        """Make everything emitted so far durable (fsync) before the next mutation."""
        with self._lock:
            if self.journal is not None:
                self.journal.sync()
