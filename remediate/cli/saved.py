"""``remediate show``: a playbook as an operator needs to know it before planning, and a saved
plan (``plan --out``) as the result it was made from, rendered in any format."""

from __future__ import annotations

from typing import Any

from remediate.engine.changes import ChangeRecord, Finding, Impact, JsonValue
from remediate.engine.planfile import SavedPlan
from remediate.engine.playbook import Playbook
from remediate.engine.runner import EXIT_DONE, RunResult
from remediate.errors import InputError
from remediate.playbooks import find_playbook


def saved_change(data: JsonValue, where: str, deletes: int) -> ChangeRecord:
    """A change as ``ChangeRecord.to_json`` wrote it; ``deletes`` as the plan recorded it."""
    if not isinstance(data, dict):
        raise InputError("a change is not an object", target=where,
                         hint="plan again: remediate plan PLAYBOOK ... --out FILE")
    try:
        return ChangeRecord(
            step=str(data["step"]), target=str(data["target"]), label=str(data["label"]),
            endpoint=str(data["endpoint"]), impact=Impact(str(data["impact"])),
            action=str(data["action"]), before=data.get("before"), after=data.get("after"),
            deletes=deletes,
        )
    except (KeyError, ValueError) as error:
        raise InputError(f"a change lacks or mangles {error}", target=where,
                         hint="plan again: remediate plan PLAYBOOK ... --out FILE") from None


def saved_result(plan: SavedPlan, path: str) -> RunResult:
    deletes = plan.deletes if len(plan.deletes) == len(plan.changes) else [0] * len(plan.changes)
    changes = [saved_change(change, f"{path}, change {number}", count)
               for number, (change, count) in enumerate(zip(plan.changes, deletes, strict=True),
                                                        start=1)]
    playbook = find_playbook(plan.playbook)
    summary: dict[str, int] = {}
    if playbook is not None:
        summary = dict(playbook.load_selection(plan.selection).summary())
    findings = [Finding(str(f.get("kind")), str(f.get("target")), str(f.get("message")))
                for f in plan.findings if isinstance(f, dict)]
    result = RunResult(
        "plan", plan.playbook, "pending" if changes else "nothing-to-do",
        dict(plan.parameters), selection=plan.selection, selection_summary=summary,
        findings=findings, changes=changes, manual_actions=list(plan.manual_actions),
        exit_code=EXIT_DONE,
    )
    result.rehearsed_s = dict(plan.rehearsed_s)
    result.manual_steps = list(plan.manual_steps)
    return result


def describe_playbook(playbook: Playbook[Any, Any]) -> list[str]:
    """Its title and KB, every parameter (required or its default) and every step a plan can
    run, with its impact and when it runs if not always."""
    lines = [f"{playbook.name}: {playbook.title}", playbook.kb, "", playbook.description, "",
             "Parameters:"]
    for parameter in playbook.parameters:
        if parameter.required:
            need = f"required: {parameter.required}"
        else:
            need = f"default: {parameter.default}" if parameter.default else "optional"
        lines.append(f"  -p {parameter.name}={parameter.example or '...'}")
        lines.append(f"      {parameter.help} ({need})")
    lines += ["", "Steps a plan can run, in order:"]
    for number, entry in enumerate(playbook.step_outline(), start=1):
        kind = entry.kind
        lines.append(f"  {number:>2}. {entry.step_id} [{kind.impact.value}] {kind.summary}")
        if entry.when:
            lines.append(f"      {entry.when}")
    return lines
