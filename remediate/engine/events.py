"""Structured events, one schema for plan and apply.

Every event carries ``run_id``, ``playbook``, ``mode``, ``step`` and ``target`` (None where it does
not apply). They go to the run's journal, to any subscriber (progress bars), and to structlog once
an application has configured it (the command line does); otherwise to the standard library's
``logging.getLogger("remediate")``, which shows nothing unless the application configures
logging: a library prints nothing of its own accord.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

import structlog

from remediate.engine.changes import JsonValue
from remediate.engine.journal import Journal, JournalRecord

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
_WARNING_EVENTS = frozenset({
    STEP_RETRIED, STEP_MANUAL, RUN_PAUSED, RUN_JOURNAL_TRUNCATED, RUN_LOCK_ABANDONED,
    RUN_LEASE_BROKEN,
})
_ERROR_EVENTS = frozenset({STEP_FAILED})

LIBRARY_LOGGER = logging.getLogger("remediate")
# The documented convention for a library: without it, Python's last-resort handler would
# print the engine's warnings (a retry, a manual action) on stderr of any program using it.
LIBRARY_LOGGER.addHandler(logging.NullHandler())


class Subscriber(Protocol):
    def __call__(self, record: JournalRecord, /) -> None: ...


class Events:
    """Emit events to structlog, the journal (if any) and subscribers."""

    def __init__(
        self,
        *,
        run_id: str | None,
        playbook: str,
        mode: str,
        journal: Journal | None = None,
        subscribers: tuple[Subscriber, ...] = (),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.run_id = run_id
        self.playbook = playbook
        self.mode = mode
        self.journal = journal
        self.subscribers = subscribers
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
        **fields: JsonValue,
    ) -> None:
        with self._lock:
            self._emit(event, step, target, fields)

    def _emit(
        self, event: str, step: str | None, target: str | None, fields: dict[str, JsonValue]
    ) -> None:
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
        # Subscribers first: one that keeps state beside the journal (a world file saved when
        # a step completes) has it on disk before the journal can say the step is done.
        for subscriber in self.subscribers:
            subscriber(record)
        if self.journal is not None:
            self.journal.append(record)
        level = self._level(event)
        log_fields = {k: v for k, v in record.items() if k not in ("event", "ts")}
        if self._log is not None:
            self._log.log(level, event, **log_fields)
        elif LIBRARY_LOGGER.isEnabledFor(level):
            LIBRARY_LOGGER.log(level, "%s %s", event,
                               json.dumps(log_fields, ensure_ascii=False, default=str))

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
