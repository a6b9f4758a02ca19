"""Results for people (text, Markdown) and machines (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

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
    """Every value is shown as plain text (``Text``), never parsed as rich markup: a name like
    ``CN=Contractor [bold]`` or ``CN=a[/]b`` is legal in AD."""
    console.print(Text(_headline(result), style="bold"))
    if result.selection_summary:
        console.print(Text("Selected: " + ", ".join(
            f"{count} {name.replace('_', ' ')}" for name, count in result.selection_summary.items()
        )))
    for finding in result.findings:
        console.print(Text.assemble((finding.kind, "yellow"),
                                    f" {finding.target}: {finding.message}"))
    steps = _by_step(result.changes)
    for step, changes in steps.items():
        table = Table(title=Text(f"{step} ({changes[0].impact.value}): {len(changes)} change(s)"),
                      title_justify="left", show_lines=False)
        for column in ("target", "action", "before", "after"):
            table.add_column(column, overflow="fold")
        for change in changes[:ROWS_PER_STEP]:
            table.add_row(Text(change.label), Text(change.action),
                          Text(value_text(change.before)), Text(value_text(change.after)))
        if len(changes) > ROWS_PER_STEP:
            table.add_row(f"... and {len(changes) - ROWS_PER_STEP} more (--format json lists all)",
                          "", "", "")
        console.print(table)
    if not result.changes:
        console.print(_no_changes(result))
    for instructions in result.manual_actions:
        console.print(Text.assemble(("manual action", "bold yellow"), f": {instructions}"))
    if result.run_dir:
        console.print(Text(f"Run directory: {result.run_dir}"))
    if result.error:
        console.print(Text(result.error, style="red"))


def _no_changes(result: RunResult) -> str:
    if result.mode == "plan":
        return "No changes."
    if result.state == "done":
        return "No changes were needed."
    return "No changes were made."


# Characters with a meaning in CommonMark / GFM inline text (emphasis, code, links, raw HTML,
# entities, strikethrough, table cells): a backslash before each shows it as it is.
_MD_SPECIAL = str.maketrans({char: "\\" + char for char in "\\`*_[]<>|&~!#"})


def _md_cell(value: str) -> str:
    """``value`` as literal Markdown text on one line (names may hold any of ``*_`<>|``)."""
    return " ".join(value.translate(_MD_SPECIAL).splitlines())


def render_markdown(result: RunResult) -> str:
    """CommonMark with GFM tables; every value is escaped, so it renders as it is."""
    lines = [f"# {_md_cell(_headline(result))}", ""]
    if result.run_dir:
        lines += [f"Run directory: {_md_cell(result.run_dir)}", ""]
    if result.selection_summary:
        lines += ["## Scope", ""]
        lines += [f"- {name.replace('_', ' ')}: {count}"
                  for name, count in result.selection_summary.items()]
        lines.append("")
    if result.findings:
        lines += ["## Findings (not acted on)", ""]
        lines += [f"- **{_md_cell(f.kind)}** {_md_cell(f.target)}: {_md_cell(f.message)}"
                  for f in result.findings]
        lines.append("")
    lines += ["## Changes", ""]
    steps = _by_step(result.changes)
    if steps:
        lines += ["| step | impact | changes |", "| --- | --- | --- |"]
        lines += [f"| {_md_cell(step)} | {changes[0].impact.value} | {len(changes)} |"
                  for step, changes in steps.items()]
    else:
        lines.append(_no_changes(result))
    lines.append("")
    for step, changes in steps.items():
        lines += [f"### {_md_cell(step)}", "", "| target | action | before | after |",
                  "| --- | --- | --- | --- |"]
        lines += [
            f"| {_md_cell(c.label)} | {_md_cell(c.action)} | {_md_cell(value_text(c.before))} | "
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
