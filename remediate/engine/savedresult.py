"""A saved plan (``plan --out``) read back as the result it was made from, to render it again
(the change ticket of ``remediate show PLAN``) in any format."""

from __future__ import annotations

from typing import Any

from remediate.engine.changes import ChangeRecord, Finding, Impact, JsonValue
from remediate.engine.planfile import SavedPlan
from remediate.engine.playbook import Playbook
from remediate.engine.result import EXIT_DONE, RunResult
from remediate.errors import InputError


def saved_change(data: JsonValue, where: str, deletes: int) -> ChangeRecord:
    """A change as ``ChangeRecord.to_json`` wrote it; ``deletes`` as the plan recorded it."""
    if not isinstance(data, dict):
        raise InputError(
            "a change is not an object",
            target=where,
            hint="plan again: remediate plan PLAYBOOK ... --out FILE",
        )
    try:
        return ChangeRecord(
            step=str(data["step"]),
            target=str(data["target"]),
            label=str(data["label"]),
            endpoint=str(data["endpoint"]),
            impact=Impact(str(data["impact"])),
            action=str(data["action"]),
            before=data.get("before"),
            after=data.get("after"),
            deletes=deletes,
        )
    except (KeyError, ValueError) as error:
        raise InputError(
            f"a change lacks or mangles {error}",
            target=where,
            hint="plan again: remediate plan PLAYBOOK ... --out FILE",
        ) from None


def saved_result(plan: SavedPlan, path: str, playbook: Playbook[Any, Any] | None) -> RunResult:
    """``playbook``: the plan's, to count its selection (None: a playbook not installed)."""
    deletes = plan.deletes if len(plan.deletes) == len(plan.changes) else [0] * len(plan.changes)
    changes = [
        saved_change(change, f"{path}, change {number}", count)
        for number, (change, count) in enumerate(zip(plan.changes, deletes, strict=True), start=1)
    ]
    summary: dict[str, int] = {}
    if playbook is not None:
        summary = dict(playbook.load_selection(plan.selection).summary())
    findings = [
        Finding(str(f.get("kind")), str(f.get("target")), str(f.get("message")))
        for f in plan.findings
        if isinstance(f, dict)
    ]
    return RunResult(
        "plan",
        plan.playbook,
        "pending" if changes else "nothing-to-do",
        dict(plan.parameters),
        selection=plan.selection,
        selection_summary=summary,
        findings=findings,
        changes=changes,
        manual_actions=list(plan.manual_actions),
        exit_code=EXIT_DONE,
        rehearsed_s=dict(plan.rehearsed_s),
        manual_steps=list(plan.manual_steps),
    )
