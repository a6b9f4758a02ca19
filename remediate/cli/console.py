"""What a run shows and keeps besides its result, driven by the engine's listener hooks
(``remediate.engine.listener``):

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
from collections.abc import Mapping, Sequence
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

from remediate.engine.changes import ChangeRecord
from remediate.engine.listener import RunInfo, RunListener
from remediate.engine.private import open_private

LOG_NAME = "log.jsonl"


class RunLog(RunListener):
    """A listener that opens ``<run dir>/log.jsonl`` when a run (apply or resume) opens; as a
    structlog processor it appends every event to it as a JSON line."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self.path: Path | None = None
        self._file: IO[str] | None = None

    def on_run_opened(self, run: RunInfo) -> None:
        if self._file is not None or run.planned or not run.run_id:
            return
        run_dir = self.runs_dir / run.run_id
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


class ProgressBars(RunListener):
    """Progress bars on a terminal: discovery (and, for apply, the rehearsal), then a bar for
    the running step over its targets. They stop before the confirmation prompt
    (``on_planned``) and start again once the run is approved or resumed."""

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

    def on_run_started(self, run: RunInfo) -> None:
        self._discovery = self._start().add_task(f"discover ({run.playbook})", total=None, unit="")

    def on_discovered(self, summary: Mapping[str, int]) -> None:
        counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in summary.items())
        self._discovered(f"discovered: {counts}")
        self._discovery = self._start().add_task("rehearse (plan)", total=None, unit="")

    def on_planned(self, changes: int) -> None:
        self._discovered(f"rehearsed: {changes} change(s)")
        self.stop()  # a confirmation prompt may follow

    def on_approved(self, changes: int) -> None:
        self._start()

    def on_resumed(self, completed: Sequence[str]) -> None:
        self._start()

    def on_step_started(self, step: str, targets: int) -> None:
        self._discovered("discovered")
        self._steps[step] = self._start().add_task(step, total=targets, unit="targets")

    def on_change(self, record: ChangeRecord) -> None:
        if record.step in self._steps:
            self._start().advance(self._steps[record.step])

    def on_waiting(self, step: str, endpoint: str, outstanding: int) -> None:
        if step in self._steps:
            self._start().update(
                self._steps[step], description=(f"{step}: waiting for {outstanding} on {endpoint}")
            )

    def on_step_completed(self, step: str) -> None:
        if step not in self._steps:
            return
        task = self._steps.pop(step)
        progress = self._start()
        size = next(t.total for t in progress.tasks if t.id == task)
        progress.update(task, completed=size, description=step)
        # Drawn full once, then the step's line (StepLines) stands for it: the bars on
        # screen are the running step's, whatever the number of steps.
        progress.refresh()
        progress.remove_task(task)

    def on_paused(self, step: str, instructions: str) -> None:
        self.stop()

    def on_run_finished(self, state: str, error: str | None) -> None:
        self.stop()


# How each impact is marked at a terminal (rich styles; NO_COLOR leaves only the words).
IMPACT_STYLES = {"destructive": "bold red", "disruptive": "yellow", "reversible": "", "read": "dim"}


@dataclass(slots=True)
class _StepTally:
    started: float
    changes: int = 0
    impact: str = ""


@dataclass(slots=True)
class StepLines(RunListener):
    """The human view of a plan, apply or resume on stderr: one line per step as it completes
    (``export-mail  2,000 exported ... (reversible) 2.1s``), and each warning or error as it
    happens. ``quiet``: the warnings and errors only. ``manual_actions``: the instructions it
    printed, which the result's summary need not print again on the same screen."""

    console: Console
    quiet: bool = False
    manual_actions: list[str] = field(default_factory=list)
    _planned: bool = False
    _steps: dict[str, _StepTally] = field(default_factory=dict)

    def on_run_opened(self, run: RunInfo) -> None:
        self._planned = run.planned

    def on_step_started(self, step: str, targets: int) -> None:
        self._steps[step] = _StepTally(time.monotonic())

    def on_change(self, record: ChangeRecord) -> None:
        if record.step in self._steps:
            self._steps[record.step].impact = record.impact.value

    def on_batch_finished(self, step: str, endpoint: str, changes: int) -> None:
        if step in self._steps:
            self._steps[step].changes += changes

    def on_step_completed(self, step: str) -> None:
        if step in self._steps and not self.quiet:
            self._completed(step, self._steps.pop(step))

    def _completed(self, step: str, tally: _StepTally) -> None:
        seconds = time.monotonic() - tally.started
        planned = self._planned
        if tally.changes:
            what = f"{tally.changes:,} to change" if planned else f"{tally.changes:,} changed"
        else:
            what = "nothing to do"
        line = Text.assemble(
            ("  ✓ " if not planned else "  · "), (f"{step:<38}", "bold"), f" {what:>16}"
        )
        if tally.impact:
            line.append(f"  {tally.impact}", style=IMPACT_STYLES.get(tally.impact, ""))
        line.append(f"  {seconds:.1f}s", style="dim")
        self.console.print(line)

    def on_retry(self, step: str, phase: str, attempt: int, error: str) -> None:
        self._warn(f"{step}: {phase} retried (attempt {attempt}) after: {error}")

    def on_manual_action(self, step: str, instructions: str) -> None:
        if not self._planned:  # a rehearsal plays it
            self._warn(f"{step}: manual action needed: {instructions}")
            self.manual_actions.append(instructions)

    def on_paused(self, step: str, instructions: str) -> None:
        self._warn(f"{step}: the run pauses until the manual action is done")

    def on_lock_abandoned(self, left_by: str) -> None:
        self._warn(f"the organisation's lock was left by a run that ended: {left_by}")

    def on_journal_truncated(self, line: int) -> None:
        self._warn(f"the journal's last line (line {line}) was cut off and is ignored")

    def on_step_failed(self, step: str, error: str) -> None:
        self.console.print(Text(f"  ✗ {step}: {error}", style="bold red"))

    def _warn(self, text: str) -> None:
        self.console.print(Text(f"  ! {text}", style="yellow"))
