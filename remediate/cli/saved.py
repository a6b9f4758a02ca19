"""``remediate show``: a playbook as an operator needs to know it before planning (a saved plan
is read back by ``remediate.engine.savedresult``)."""

from __future__ import annotations

from typing import Any

from remediate.engine.playbook import Playbook


def describe_playbook(playbook: Playbook[Any, Any]) -> list[str]:
    """Its title and KB, every parameter (required or its default) and every step a plan can
    run, with its impact and when it runs if not always."""
    lines = [
        f"{playbook.name}: {playbook.title}",
        playbook.kb,
        "",
        playbook.description,
        "",
        "Parameters:",
    ]
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
