"""A run as its journal tells it: what resume, ``runs`` and ``show-run`` read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from remediate.engine import events as ev
from remediate.engine.changes import JsonValue
from remediate.engine.journal import read_journal
from remediate.engine.step import Options
from remediate.errors import InputError


@dataclass(frozen=True, slots=True)
class RunState:
    """A run as its journal tells it."""

    run_id: str
    playbook: str
    parameters: dict[str, str]
    options: Options
    source: dict[str, JsonValue]
    selection: JsonValue
    completed: tuple[str, ...]
    state: str
    started: str | None
    finished: bool
    approved: bool
    truncated_line: int | None
    counts: dict[str, int]
    writable_dc: str | None = None  # the DC its writes went to (pinned at discovery)


def load_run_state(run_dir: Path) -> RunState:
    contents = read_journal(run_dir / "journal.jsonl")
    playbook, parameters, source, started = "", {}, {}, None
    options = Options()
    selection: JsonValue = None
    writable_dc: str | None = None
    completed: list[str] = []
    state, finished, approved = "started", False, False
    counts = {"applied": 0, "failed": 0}
    for record in contents.records:
        event = record.get("event")
        if event == ev.RUN_STARTED:
            playbook = str(record.get("playbook", ""))
            raw = record.get("parameters")
            parameters = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
            options = Options.from_json(record.get("options"))
            src = record.get("source")
            source = dict(src) if isinstance(src, dict) else {}
            started = str(record.get("ts"))
        elif event == ev.RUN_DISCOVERED:
            selection = record.get("selection")
            pinned = record.get("writable_dc")
            writable_dc = str(pinned) if pinned else None
        elif event == ev.STEP_COMPLETED and isinstance(record.get("step"), str):
            completed.append(str(record["step"]))
        elif event == ev.STEP_APPLIED:
            counts["applied"] += 1
        elif event == ev.STEP_FAILED:
            counts["failed"] += 1
        elif event == ev.RUN_PAUSED:
            state = "paused"
        elif event == ev.RUN_FINISHED:
            state = str(record.get("state", "finished"))
            finished = state == "done"
        elif event == ev.RUN_APPROVED:
            approved = True
        elif event == ev.RUN_RESUMED:
            state = "started"
    if not playbook:
        raise InputError("the journal has no run.started record", target=str(run_dir))
    return RunState(
        run_id=run_dir.name, playbook=playbook, parameters=parameters,
        options=options, source=source, selection=selection,
        completed=tuple(completed), state=state, started=started, finished=finished,
        approved=approved,
        truncated_line=contents.truncated_line, counts=counts, writable_dc=writable_dc,
    )
