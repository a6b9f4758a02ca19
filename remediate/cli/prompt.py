"""The confirmation prompt of an apply: every change the run will make, counted per step and
endpoint, with the ones that need the operator's confirmation marked (the engine names those in
the text it asks about)."""

from __future__ import annotations

import json
from pathlib import Path

from remediate.engine.changes import Impact

GATED = "  <- needs confirmation"


def _counts(plan: Path) -> dict[tuple[str, str, str], int]:
    """(step, impact, endpoint) -> count, in plan order, from the run's ``plan.json`` (one
    change a line, as the engine writes it)."""
    counts: dict[tuple[str, str, str], int] = {}
    with open(plan, encoding="utf-8") as lines:
        for line in lines:
            text = line.strip().removeprefix(",")
            if not text.startswith('{"step"'):  # the opening '{"changes": [' line
                continue
            change = json.loads(text)
            key = (str(change["step"]), str(change["impact"]), str(change["endpoint"]))
            counts[key] = counts.get(key, 0) + 1
    return counts


def prompt_text(plan: Path | None, gated: str) -> str:
    """What the prompt shows before 'Type yes': every step's count; ``gated`` (the engine's
    'step (impact): N target(s) on endpoint; ...') if the plan cannot be read."""
    try:
        counts = _counts(plan) if plan is not None else {}
    except (OSError, ValueError, KeyError):
        counts = {}
    if not counts:
        lines = "".join(f"\n  {part}" for part in gated.split("; "))
        return f"About to make these changes:{lines}"
    total = sum(counts.values())
    shown = []
    for (step, impact, endpoint), count in counts.items():
        mark = GATED if Impact(impact).needs_confirmation else ""
        shown.append(f"\n  {step} ({impact}): {count:,} target(s) on {endpoint}{mark}")
    return f"About to make these changes: {total:,} in all (every one is in {plan})" + "".join(
        shown
    )
