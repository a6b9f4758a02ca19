"""What a run shows and keeps besides its result, driven by the engine's events (subscribers):

- ``ProgressBars``: rich progress bars on stderr, for discovery and for each step over its
  targets, when stderr is a terminal and the output is for people (not JSON, not ``-q``).
- ``StepLines``: the human view on stderr: one line per step with its count and time, and every
  warning (a retry, a manual action, a pause) and error as it happens; with ``-q`` only those.
- ``RunLog``: every structlog event of an apply or resume as a JSON line in
  ``<run dir>/log.jsonl``, whatever the console shows (``-q`` or not).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from remediate.engine import events as ev
from remediate.engine.journal import JournalRecord
from remediate.engine.private import open_private

LOG_NAME = "log.jsonl"


class RunLog:
    """Subscribed to the engine's events, it opens ``<run dir>/log.jsonl`` when a run (apply or
    resume) starts; as a structlog processor it appends every event to it as a JSON line."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self.path: Path | None = None
        self._file: IO[str] | None = None

    def __call__(self, record: JournalRecord) -> None:
        run_id = record.get("run_id")
        if self._file is not None or record.get("mode") != "apply" or not run_id:
            return
        run_dir = self.runs_dir / str(run_id)
        if run_dir.is_dir():
            self.path = run_dir / LOG_NAME
            self._file = open_private(self.path, "a")

    def processor(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        if self._file is not None:
            self._file.write(json.dumps(event_dict, ensure_ascii=False, default=str) + "\n")
            self._file.flush()
        return event_dict

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ProgressBars:
    """Progress bars on a terminal: discovery (and, for apply, the rehearsal), then a bar for
    the running step over its targets. They stop before the confirmation prompt
    (``run.planned``) and start again once the run is approved or resumed."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._discovery: TaskID | None = None
        self._steps: dict[str, TaskID] = {}

    def _start(self) -> Progress:
        if self._progress is None:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[unit]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
                redirect_stdout=False,
            )
            self._progress.start()
        return self._progress

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._discovery = None
            self._steps = {}

    def _discovered(self, text: str) -> None:
        if self._progress is not None and self._discovery is not None:
            self._progress.update(self._discovery, total=1, completed=1, description=text)
            self._discovery = None

    def __call__(self, record: JournalRecord) -> None:
        event, step = record.get("event"), str(record.get("step") or "")
        if event == ev.RUN_STARTED:
            self._discovery = self._start().add_task(
                f"discover ({record.get('playbook')})", total=None, unit="")
        elif event == ev.RUN_DISCOVERED:
            summary = record.get("summary")
            counts = (", ".join(f"{v} {str(k).replace('_', ' ')}" for k, v in summary.items())
                      if isinstance(summary, dict) else "")
            self._discovered(f"discovered: {counts}")
            self._discovery = self._start().add_task("rehearse (plan)", total=None, unit="")
        elif event == ev.RUN_PLANNED:
            self._discovered(f"rehearsed: {record.get('changes')} change(s)")
            self.stop()  # a confirmation prompt may follow
        elif event in (ev.RUN_APPROVED, ev.RUN_RESUMED):
            self._start()
        elif event == ev.STEP_STARTED:
            self._discovered("discovered")
            targets = record.get("targets")
            total = targets if isinstance(targets, int) else 0
            self._steps[step] = self._start().add_task(step, total=total, unit="targets")
        elif event in (ev.STEP_PLANNED, ev.STEP_APPLIED) and step in self._steps:
            self._start().advance(self._steps[step])
        elif event == ev.STEP_WAITING and step in self._steps:
            self._start().update(self._steps[step], description=(
                f"{step}: waiting for {record.get('outstanding')} on {record.get('endpoint')}"))
        elif event == ev.STEP_COMPLETED and step in self._steps:
            task = self._steps[step]
            progress = self._start()
            size = next(t.total for t in progress.tasks if t.id == task)
            progress.update(task, completed=size, description=step)
            # Drawn full once, then the step's line (StepLines) stands for it: the bars on
            # screen are the running step's, whatever the number of steps.
            progress.refresh()
            progress.remove_task(task)
            del self._steps[step]
        elif event in (ev.RUN_FINISHED, ev.RUN_PAUSED):
            self.stop()


# How each impact is marked at a terminal (rich styles; NO_COLOR leaves only the words).
IMPACT_STYLES = {"destructive": "bold red", "disruptive": "yellow", "reversible": "",
                 "read": "dim"}


@dataclass(slots=True)
class _StepTally:
    started: float
    changes: int = 0
    impact: str = ""


@dataclass(slots=True)
class StepLines:
    """The human view of a plan, apply or resume on stderr: one line per step as it completes
    (``export-mail  2,000 exported ... (reversible) 2.1s``), and each warning or error as it
    happens. ``quiet``: the warnings and errors only."""

    console: Console
    quiet: bool = False
    _steps: dict[str, _StepTally] = field(default_factory=dict)

    def __call__(self, record: JournalRecord) -> None:
        event, step = record.get("event"), str(record.get("step") or "")
        if event == ev.STEP_STARTED:
            self._steps[step] = _StepTally(time.monotonic())
        elif event in (ev.STEP_PLANNED, ev.STEP_APPLIED) and step in self._steps:
            self._steps[step].impact = str(record.get("impact") or "")
        elif event == ev.STEP_VERIFIED and step in self._steps:
            changes = record.get("changes")
            self._steps[step].changes += changes if isinstance(changes, int) else 0
        elif event == ev.STEP_COMPLETED and step in self._steps and not self.quiet:
            self._completed(step, self._steps.pop(step), record.get("mode") == "plan")
        else:
            self._warning(event, step, record)

    def _completed(self, step: str, tally: _StepTally, planned: bool) -> None:
        seconds = time.monotonic() - tally.started
        if tally.changes:
            what = f"{tally.changes:,} to change" if planned else f"{tally.changes:,} changed"
        else:
            what = "nothing to do"
        line = Text.assemble(("  ✓ " if not planned else "  · "), (f"{step:<38}", "bold"),
                             f" {what:>16}")
        if tally.impact:
            line.append(f"  {tally.impact}", style=IMPACT_STYLES.get(tally.impact, ""))
        line.append(f"  {seconds:.1f}s", style="dim")
        self.console.print(line)

    def _warning(self, event: object, step: str, record: JournalRecord) -> None:
        if event == ev.STEP_RETRIED:
            text = (f"{step}: {record.get('phase')} retried (attempt {record.get('attempt')}) "
                    f"after: {record.get('error')}")
        elif event == ev.STEP_MANUAL and record.get("mode") != "plan":  # a rehearsal plays it
            text = f"{step}: manual action needed: {record.get('instructions')}"
        elif event == ev.RUN_PAUSED:
            text = f"{step}: the run pauses until the manual action is done"
        elif event == ev.RUN_LOCK_ABANDONED:
            text = f"the organisation's lock was left by a run that ended: {record.get('left_by')}"
        elif event == ev.RUN_JOURNAL_TRUNCATED:
            text = f"the journal's last line (line {record.get('line')}) was cut off and is ignored"
        elif event == ev.STEP_FAILED:
            self.console.print(Text(f"  ✗ {step}: {record.get('error')}", style="bold red"))
            return
        else:
            return
        self.console.print(Text(f"  ! {text}", style="yellow"))
