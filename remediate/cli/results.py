"""What the text report and the change ticket both say of a result."""

from __future__ import annotations

from collections.abc import Sequence

from remediate.engine.changes import ChangeRecord, JsonValue
from remediate.engine.runner import RunResult


def value_text(value: JsonValue) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={value_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(value_text(v) for v in value)
    return str(value)


def by_step(changes: Sequence[ChangeRecord]) -> dict[str, list[ChangeRecord]]:
    steps: dict[str, list[ChangeRecord]] = {}
    for change in changes:
        steps.setdefault(change.step, []).append(change)
    return steps


def headline(result: RunResult) -> str:
    verb = {"plan": "Plan", "apply": "Apply", "resume": "Resume"}.get(result.mode, result.mode)
    run = f" run {result.run_id}" if result.run_id else ""
    return f"{verb} {result.playbook}{run}: {result.state}"


def no_changes(result: RunResult) -> str:
    if result.mode == "plan":
        return "No changes."
    if result.state == "done":
        return "No changes were needed."
    return "No changes were made."
