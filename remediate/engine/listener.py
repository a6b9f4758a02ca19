"""What a program hears of a run while it happens: ``RunListener``, typed hooks the engine
calls (as Nornir's ``Processor``), one method per event a listener may act on.

The journal, not a listener, is where events are written down as JSON (``engine.events``); a
listener is given typed values (a ``ChangeRecord``, a count, a step's id) and never a record to
pick apart. Every method does nothing here, so a listener overrides only what it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from remediate.engine.changes import ChangeRecord


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Which run the events that follow belong to. ``run_id`` is None for a plan (it keeps no
    run directory); ``mode`` is ``plan`` or ``apply`` (a resume applies)."""

    run_id: str | None
    playbook: str
    mode: str

    @property
    def planned(self) -> bool:
        return self.mode == "plan"


class RunListener:
    """Hooks of a plan, an apply or a resume, called in the order things happen, from the
    thread that did them (batches on several servers run on several threads). A listener is
    called before the journal records the event: what it keeps beside the journal is on disk
    before the journal says so. An exception it raises stops the run as the step's would."""

    def on_run_opened(self, run: RunInfo) -> None:
        """Before the first event of a plan, an apply or a resume."""

    def on_event(self, kind: str) -> None:
        """Every event (``step.completed``), before its own hook: for what acts on any event
        alike, such as a lease renewed while the run lives."""

    def on_run_started(self, run: RunInfo) -> None:
        """A plan or an apply begins discovering (a resume does not: ``on_resumed``)."""

    def on_discovered(self, summary: Mapping[str, int]) -> None:
        """Discovery selected what ``summary`` counts (users, servers ...)."""

    def on_planned(self, changes: int) -> None:
        """The rehearsal before an apply found ``changes``; a confirmation may follow."""

    def on_approved(self, changes: int) -> None:
        """The apply passed its safety gates and starts changing things."""

    def on_resumed(self, completed: Sequence[str]) -> None:
        """A resume continues its run; ``completed``: the steps already done."""

    def on_journal_truncated(self, line: int) -> None:
        """A resume found the journal's last line cut off mid-write and ignores it."""

    def on_lock_abandoned(self, left_by: str) -> None:
        """The organisation's lock was left by a run that ended without releasing it."""

    def on_step_started(self, step: str, targets: int) -> None:
        """A step starts over ``targets`` targets."""

    def on_change(self, record: ChangeRecord) -> None:
        """A change was planned (a plan, a rehearsal) or took effect (an apply)."""

    def on_waiting(self, step: str, endpoint: str, outstanding: int) -> None:
        """A step polls ``endpoint`` until ``outstanding`` targets converge."""

    def on_batch_finished(self, step: str, endpoint: str, changes: int) -> None:
        """A step's batch on ``endpoint`` is done and verified, with ``changes`` made."""

    def on_retry(self, step: str, phase: str, attempt: int, error: str) -> None:
        """A transient error: ``phase`` (observe, apply, discover ...) is tried again."""

    def on_manual_action(self, step: str, instructions: str) -> None:
        """A step needs the operator to do something the engine cannot."""

    def on_step_failed(self, step: str, error: str) -> None:
        """A step failed; the run stops."""

    def on_step_completed(self, step: str) -> None:
        """A step is done on every endpoint."""

    def on_paused(self, step: str, instructions: str) -> None:
        """The run pauses until the operator's manual action is done (``resume``)."""

    def on_run_finished(self, state: str, error: str | None) -> None:
        """The run ended: ``state`` is done, pending, nothing-to-do, failed, refused,
        interrupted ..., with the error that ended it, if any."""
