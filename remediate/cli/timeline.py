"""``show-run``: a run's journal as a timeline people can read, or as versioned JSON."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from remediate.cli.results import value_text
from remediate.engine import events as ev
from remediate.engine.changes import JsonValue
from remediate.engine.journal import JournalRecord
from remediate.engine.runstate import RunState

RUN_FORMAT = "remediate.run/1"

# One record per target (or per poll): many in a large run; --all shows them.
PER_TARGET = frozenset({ev.STEP_APPLIED, ev.STEP_PLANNED, ev.STEP_WAITING})


def _when(record: JournalRecord) -> str:
    """'2026-11-21T14:05:32.276790Z' -> '2026-11-21 14:05:32.276'."""
    ts = str(record.get("ts") or "")
    return ts[:23].replace("T", " ") if len(ts) >= 23 else ts


def _count(value: JsonValue, noun: str) -> str:
    count = len(value) if isinstance(value, list) else value
    return f"{count} {noun}"


def details(record: JournalRecord) -> str:
    """What a journal record says, in a few words."""
    event = record.get("event")
    get = record.get
    if event == ev.RUN_STARTED:
        parameters = get("parameters")
        shown = (
            " ".join(f"{k}={v}" for k, v in parameters.items())
            if isinstance(parameters, dict) and parameters
            else "none"
        )
        source = get("source")
        where = (
            f"; {source.get('kind')} {source.get('path')}"
            if isinstance(source, dict) and source.get("path")
            else ""
        )
        return f"parameters: {shown}{where}"
    if event == ev.RUN_DISCOVERED:
        summary = get("summary")
        counts = (
            ", ".join(f"{v} {str(k).replace('_', ' ')}" for k, v in summary.items())
            if isinstance(summary, dict)
            else ""
        )
        findings = get("findings")
        found = len(findings) if isinstance(findings, list) else 0
        return f"selected {counts}" + (f"; {found} finding(s), not acted on" if found else "")
    if event in (ev.RUN_PLANNED, ev.RUN_APPROVED):
        verb = "planned" if event == ev.RUN_PLANNED else "approved (safety gates passed)"
        return f"{get('changes')} change(s) {verb}"
    if event == ev.RUN_RESUMED:
        done = get("completed")
        return "already done: " + (
            ", ".join(map(str, done)) if isinstance(done, list) and done else "nothing"
        )
    if event == ev.RUN_JOURNAL_TRUNCATED:
        return f"the journal's line {get('line')} was cut off (crash) and is ignored"
    if event == ev.RUN_PAUSED:
        return f"PAUSED for a manual action: {get('instructions')}"
    if event == ev.RUN_FINISHED:
        parts = [str(get("state"))]
        if get("changes") is not None:
            parts.append(f"{get('changes')} change(s)")
        if get("error"):
            parts.append(f"ERROR: {get('error')}")
        return ", ".join(parts)
    if event == ev.STEP_STARTED:
        return _count(get("targets"), "target(s)")
    if event == ev.STEP_APPLYING:
        return f"{_count(get('targets'), 'target(s)')} on {get('endpoint')}"
    if event in (ev.STEP_APPLIED, ev.STEP_PLANNED):
        return (
            f"{get('label')}: {get('action')}, {value_text(get('before'))} -> "
            f"{value_text(get('after'))}"
        )
    if event == ev.STEP_VERIFIED:
        return f"{get('changes')} change(s) on {get('endpoint')} verified"
    if event == ev.STEP_WAITING:
        return f"{get('outstanding')} outstanding on {get('endpoint')} (poll {get('polls')})"
    if event == ev.STEP_RETRIED:
        return f"retry {get('attempt')} ({get('phase')}): {get('error')}"
    if event == ev.STEP_MANUAL:
        return f"MANUAL ACTION: {get('instructions')}"
    if event == ev.STEP_FAILED:
        target = f"{get('target')}: " if get("target") else ""
        return f"FAILED {target}{get('error')}"
    if event == ev.STEP_COMPLETED:
        return "done"
    known = {"event", "ts", "run_id", "playbook", "mode", "step", "target"}
    return ", ".join(f"{k}={value_text(v)}" for k, v in record.items() if k not in known)


def _backups(run_dir: Path) -> str:
    ldif = list((run_dir / "backups" / "ad").glob("*.ldif"))
    mail = [p for p in (run_dir / "backups" / "mail").rglob("*") if p.is_file()]
    return (
        f"{len(ldif)} LDIF file(s) in {run_dir / 'backups' / 'ad'}, "
        f"{len(mail)} mail export(s) in {run_dir / 'backups' / 'mail'}"
    )


def source_text(source: dict[str, JsonValue]) -> str:
    """What a run acted on: 'world /tmp/w.json', 'inventory corp.toml', and the saved plan it
    applied, with the plan's sha256 (what the approver signed)."""
    where = f"{source.get('kind')} {source.get('path')}" if source.get("path") else "not recorded"
    plan = source.get("plan")
    if isinstance(plan, dict):
        where += f"; applied the saved plan {plan.get('path')} (sha256 {plan.get('sha256')})"
    return where


def render_timeline(
    state: RunState, records: Sequence[JournalRecord], run_dir: Path, *, every: bool
) -> list[str]:
    counts = state.counts
    lines = [
        f"Run {state.run_id}: {state.playbook}, {state.state}",
        f"Started {_when({'ts': state.started})} UTC; {counts['applied']} change(s) applied, "
        f"{counts['failed']} failed; {len(state.completed)} step(s) completed",
        "Parameters: " + (" ".join(f"{k}={v}" for k, v in state.parameters.items()) or "none"),
        f"Source: {source_text(state.source)}",
        f"Run directory: {run_dir}",
        f"Backups: {_backups(run_dir)}",
        "",
    ]
    shown = [r for r in records if every or r.get("event") not in PER_TARGET]
    width = max([len(str(r.get("step") or "-")) for r in shown] + [4])
    lines.append(f"{'time':<23}  {'event':<21}  {'step':<{width}}  details")
    for record in shown:
        lines.append(
            f"{_when(record):<23}  {record.get('event')!s:<21}  "
            f"{record.get('step') or '-'!s:<{width}}  {details(record)}"
        )
    hidden = len(records) - len(shown)
    if hidden:
        lines.append(f"({hidden} per-target event(s) not shown: --all lists every one)")
    if state.state in ("paused", "failed", "interrupted", "started") and state.approved:
        lines.append(f"continue with: remediate resume {state.run_id}")
    return lines


def timeline_json(
    state: RunState, records: Sequence[JournalRecord], run_dir: Path
) -> dict[str, JsonValue]:
    return {
        "format": RUN_FORMAT,
        "run_id": state.run_id,
        "playbook": state.playbook,
        "state": state.state,
        "started": state.started,
        "parameters": dict(state.parameters),
        "source": dict(state.source),
        "run_dir": str(run_dir),
        "applied": state.counts["applied"],
        "failed": state.counts["failed"],
        "completed_steps": list(state.completed),
        "events": list(records),
    }
