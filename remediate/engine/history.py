"""What earlier runs in the state directory did, as their journals tell it (read-only).

A playbook whose repair must never be undone by a later run (kb278447: a reconnected user must
never be "repaired" back to the old blank mailbox) reads this during discovery. Only what the
journal already records is used: the ``run.discovered`` selection, each ``step.applied`` change
(step and target key) and how the run ended.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from remediate.engine import events as ev
from remediate.engine.changes import JsonValue
from remediate.engine.journal import RunStore

# The events read; any other line is skipped before it is parsed (a journal of 100,000 users
# holds several hundred thousand per-target records of other kinds).
_WANTED = (ev.RUN_STARTED, ev.RUN_DISCOVERED, ev.STEP_APPLIED, ev.RUN_FINISHED, ev.RUN_RESUMED)


@dataclass(frozen=True, slots=True)
class PastRun:
    """One earlier run: its selection, the changes it applied, whether it finished."""

    run_id: str
    selection: JsonValue
    applied: frozenset[tuple[str, str]]  # (step id, target key)
    finished: bool


class RunHistory(Protocol):
    def runs(self, playbook: str) -> Iterator[PastRun]:
        """Earlier runs of ``playbook`` that applied at least one change, oldest first."""
        ...


class NoHistory:
    """No earlier runs (a library caller without a state directory)."""

    def runs(self, playbook: str) -> Iterator[PastRun]:
        return iter(())


class JournalHistory:
    """The runs under a state directory, read from their journals."""

    def __init__(self, store: RunStore) -> None:
        self._store = store

    def runs(self, playbook: str) -> Iterator[PastRun]:
        for run_id in self._store.run_ids():
            run = _read(self._store.runs_dir / run_id / "journal.jsonl", run_id, playbook)
            if run is not None and run.applied:
                yield run


def _read(path: Path, run_id: str, playbook: str) -> PastRun | None:
    selection: JsonValue = None
    applied: set[tuple[str, str]] = set()
    finished = False
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not any(name in line for name in _WANTED):
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line a crash cut off (read_journal says which); nothing to use
            if not isinstance(record, dict):
                continue
            event = record.get("event")
            if event == ev.RUN_STARTED and record.get("playbook") != playbook:
                return None
            if event == ev.RUN_DISCOVERED:
                selection = record.get("selection")
            elif event == ev.STEP_APPLIED:
                step, target = record.get("step"), record.get("target")
                if isinstance(step, str) and isinstance(target, str):
                    applied.add((step, target))
            elif event == ev.RUN_FINISHED:
                finished = record.get("state") == "done"
            elif event == ev.RUN_RESUMED:
                finished = False
    return PastRun(run_id, selection, frozenset(applied), finished)
