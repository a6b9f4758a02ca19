"""A run as its journal tells it: what resume, ``runs`` and ``show-run`` read."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path

from remediate.engine import events as ev
from remediate.engine.changes import ChangeRecord, Impact, JsonValue
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
    # (step, target) of changes announced (step.applying) but never recorded as applied: the
    # process stopped without recording them (killed); resume observes and settles them.
    in_doubt: frozenset[tuple[str, str]] = frozenset()


def load_run_state(run_dir: Path) -> RunState:
    contents = read_journal(run_dir / "journal.jsonl")
    playbook, parameters, source, started = "", {}, {}, None
    options = Options()
    selection: JsonValue = None
    writable_dc: str | None = None
    completed: list[str] = []
    state, finished, approved = "started", False, False
    counts = {"applied": 0, "failed": 0}
    in_doubt: set[tuple[str, str]] = set()
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
        elif event == ev.RUN_RESUMED and isinstance(record.get("leave_out_dcs"), list):
            # A resume that left out more DCs: the next resume leaves them out too.
            more = [str(name) for name in record["leave_out_dcs"]]  # type: ignore[union-attr]
            options = replace(
                options, leave_out_dcs=tuple(dict.fromkeys((*options.leave_out_dcs, *more)))
            )
        elif event == ev.RUN_DISCOVERED:
            selection = record.get("selection")
            pinned = record.get("writable_dc")
            writable_dc = str(pinned) if pinned else None
        elif event == ev.STEP_COMPLETED and isinstance(record.get("step"), str):
            completed.append(str(record["step"]))
        elif event == ev.STEP_APPLYING and isinstance(record.get("targets"), list):
            step = str(record.get("step"))
            in_doubt.update((step, str(target)) for target in record["targets"])  # type: ignore[union-attr]
        elif event == ev.STEP_APPLIED:
            counts["applied"] += 1
            in_doubt.discard((str(record.get("step")), str(record.get("target"))))
        elif event == ev.STEP_STOPPED and isinstance(record.get("unchanged"), list):
            step = str(record.get("step"))
            in_doubt.difference_update((step, str(target)) for target in record["unchanged"])  # type: ignore[union-attr]
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
        run_id=run_dir.name,
        playbook=playbook,
        parameters=parameters,
        options=options,
        source=source,
        selection=selection,
        completed=tuple(completed),
        state=state,
        started=started,
        finished=finished,
        approved=approved,
        truncated_line=contents.truncated_line,
        counts={**counts, "in_doubt": len(in_doubt)},
        writable_dc=writable_dc,
        in_doubt=frozenset(in_doubt),
    )


def planned_records(
    plan: Path, wanted: Collection[tuple[str, str]]
) -> dict[tuple[str, str], ChangeRecord]:
    """The planned changes (``plan.json`` of the run directory, one change a line) of these
    (step, target) pairs; the file is read a line at a time (at 100,000 users it is large)."""
    found: dict[tuple[str, str], ChangeRecord] = {}
    if not plan.exists():
        return found
    with open(plan, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                change = json.loads(line.lstrip(",").strip() or "null")
                key = (str(change["step"]), str(change["target"]))
                if key in wanted:
                    found[key] = ChangeRecord(
                        step=key[0],
                        target=key[1],
                        label=str(change["label"]),
                        endpoint=str(change["endpoint"]),
                        impact=Impact(change["impact"]),
                        action=str(change["action"]),
                        before=change["before"],
                        after=change["after"],
                    )
            except (ValueError, TypeError, KeyError):
                continue  # the opening and closing lines, or a damaged one: left unsettled
    return found
