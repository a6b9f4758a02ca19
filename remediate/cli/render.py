"""Results for people (text, Markdown) and machines (JSON)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from remediate.engine.changes import ChangeRecord, JsonValue
from remediate.engine.runner import RunResult

ROWS_PER_STEP = 50


def value_text(value: JsonValue) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={value_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(value_text(v) for v in value)
    return str(value)


def _by_step(changes: Sequence[ChangeRecord]) -> dict[str, list[ChangeRecord]]:
    steps: dict[str, list[ChangeRecord]] = {}
    for change in changes:
        steps.setdefault(change.step, []).append(change)
    return steps


def _headline(result: RunResult) -> str:
    verb = {"plan": "Plan", "apply": "Apply", "resume": "Resume"}.get(result.mode, result.mode)
    run = f" run {result.run_id}" if result.run_id else ""
    return f"{verb} {result.playbook}{run}: {result.state}"


def render_text(result: RunResult, console: Console) -> None:
    console.print(f"[bold]{_headline(result)}[/bold]")
    if result.selection_summary:
        console.print("Selected: " + ", ".join(
            f"{count} {name.replace('_', ' ')}" for name, count in result.selection_summary.items()
        ))
    for finding in result.findings:
        console.print(f"[yellow]{finding.kind}[/yellow] {finding.target}: {finding.message}",
                      markup=True, highlight=False)
    steps = _by_step(result.changes)
    for step, changes in steps.items():
        table = Table(title=f"{step} ({changes[0].impact.value}): {len(changes)} change(s)",
                      title_justify="left", show_lines=False)
        for column in ("target", "action", "before", "after"):
            table.add_column(column, overflow="fold")
        for change in changes[:ROWS_PER_STEP]:
            table.add_row(change.label, change.action, value_text(change.before),
                          value_text(change.after))
        if len(changes) > ROWS_PER_STEP:
            table.add_row(f"... and {len(changes) - ROWS_PER_STEP} more (--format json lists all)",
                          "", "", "")
        console.print(table)
    if not result.changes:
        console.print("No changes." if result.mode == "plan" else "No changes were needed.")
    for instructions in result.manual_actions:
        console.print(f"[bold yellow]manual action[/bold yellow]: {instructions}",
                      highlight=False)
    if result.run_dir:
        console.print(f"Run directory: {result.run_dir}", highlight=False)
    if result.error:
        console.print(f"[red]{result.error}[/red]", highlight=False)


def _md_cell(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(result: RunResult) -> str:
    lines = [f"# {_headline(result)}", ""]
    if result.selection_summary:
        lines += ["## Scope", ""]
        lines += [f"- {name.replace('_', ' ')}: {count}"
                  for name, count in result.selection_summary.items()]
        lines.append("")
    if result.findings:
        lines += ["## Findings (not acted on)", ""]
        lines += [f"- **{f.kind}** {_md_cell(f.target)}: {_md_cell(f.message)}"
                  for f in result.findings]
        lines.append("")
    counts = Counter(change.step for change in result.changes)
    lines += ["## Changes", "", "| step | impact | changes |", "| --- | --- | --- |"]
    impacts = {change.step: change.impact.value for change in result.changes}
    lines += [f"| {step} | {impacts[step]} | {count} |" for step, count in counts.items()]
    lines.append("")
    for step, changes in _by_step(result.changes).items():
        lines += [f"### {step}", "", "| target | action | before | after |",
                  "| --- | --- | --- | --- |"]
        lines += [
            f"| {_md_cell(c.label)} | {c.action} | {_md_cell(value_text(c.before))} | "
            f"{_md_cell(value_text(c.after))} |"
            for c in changes
        ]
        lines.append("")
    if result.manual_actions:
        lines += ["## Manual actions", ""] + [f"- {_md_cell(m)}" for m in result.manual_actions]
        lines.append("")
    if result.error:
        lines += ["## Error", "", _md_cell(result.error), ""]
    return "\n".join(lines)


def render_json(result: RunResult) -> str:
    return json.dumps(result.to_json(), indent=2, ensure_ascii=False)
