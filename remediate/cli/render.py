"""Results for people (text, Markdown) and machines (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from remediate.cli.notes import PLAYBOOK_NOTES, ROLLBACK_ORDER, in_words, notes
from remediate.engine.changes import ChangeRecord, Impact, JsonValue
from remediate.engine.runner import RunResult
from remediate.playbooks import PLAYBOOKS

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
    for warning in result.warnings:
        console.print(Text.assemble(("warning", "yellow"), f": {warning}"))
    for skipped in result.skipped:
        console.print(Text.assemble(("skipped", "yellow"),
                                    f" (drifted since the plan, not applied): {skipped}"))
    steps = _by_step(result.changes)
    for step, changes in steps.items():
        words = "; ".join(in_words(step, changes))
        # the title on its own line: a table's title would wrap at the table's width
        console.print(Text(f"{step} ({changes[0].impact.value}): {len(changes)} change(s): "
                           f"{words}", style="bold"))
        table = Table(show_lines=False)
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
    """A change ticket, for the approver: what the run does in words and counts, the scope, a
    table per step, the impact and risks, the manual actions and the rollback notes.
    CommonMark with GFM tables; every value from the world is escaped, so it renders as it is.
    """
    steps = _by_step(result.changes)
    playbook = PLAYBOOKS.get(result.playbook)
    lines = [f"# {_md_cell(_headline(result))}", ""]
    if playbook is not None:
        lines += [f"{_md_cell(playbook.title)} (KB: <{playbook.kb}>).", ""]
    if result.run_dir:
        lines += [f"Run directory: {_md_cell(result.run_dir)}", ""]
    lines += _md_summary(result, steps)
    if result.warnings:
        lines += ["## Warnings", ""] + [f"- {_md_cell(w)}" for w in result.warnings] + [""]
    if result.skipped:
        lines += ["## Skipped (drifted since the plan, not applied)", ""]
        lines += [f"- {_md_cell(item)}" for item in result.skipped] + [""]
    lines += _md_scope(result)
    if result.findings:
        lines += ["## Findings (not acted on)", ""]
        lines += [f"- **{_md_cell(f.kind)}** {_md_cell(f.target)}: {_md_cell(f.message)}"
                  for f in result.findings]
        lines.append("")
    lines += ["## Changes", ""]
    if steps:
        lines += ["| step | impact | changes |", "| --- | --- | --- |"]
        lines += [f"| {_md_cell(step)} | {changes[0].impact.value} | {len(changes)} |"
                  for step, changes in steps.items()]
    else:
        lines.append(_no_changes(result))
    lines.append("")
    for step, changes in steps.items():
        words = "; ".join(in_words(step, changes))
        lines += [f"### {_md_cell(step)}", "",
                  f"*{changes[0].impact.value}*: {_md_cell(words)}.", "",
                  "| target | action | before | after |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {_md_cell(c.label)} | {_md_cell(c.action)} | {_md_cell(value_text(c.before))} | "
            f"{_md_cell(value_text(c.after))} |"
            for c in changes
        ]
        lines.append("")
    lines += _md_risks(result, steps)
    if result.manual_actions:
        lines += ["## Manual actions", ""]
        lines += ["The run pauses at these and waits (polling) until their effect shows:", ""]
        lines += [f"- {_md_cell(m)}" for m in result.manual_actions]
        lines.append("")
    lines += _md_rollback(result, steps)
    if result.error:
        lines += ["## Error", "", _md_cell(result.error), ""]
    return "\n".join(lines)


def _md_summary(result: RunResult, steps: dict[str, list[ChangeRecord]]) -> list[str]:
    if not steps:
        return []
    if result.mode == "plan":
        lead = "Applying this plan will"
    else:
        lead = "This run did" if result.state == "done" else "Before it stopped, this run did"
    phrases = [phrase for step, changes in steps.items() for phrase in in_words(step, changes)]
    lines = ["## Summary", "", f"{lead}: {_md_cell(', '.join(phrases))}.", ""]
    gated = [phrase for step, changes in steps.items() if changes[0].impact.needs_confirmation
             for phrase in in_words(step, changes)]
    if gated:
        lines += [f"- Needs confirmation (`--yes` or the prompt): **{_md_cell(', '.join(gated))}**"]
    impacts: dict[str, int] = {}
    for change in result.changes:
        impacts[change.impact.value] = impacts.get(change.impact.value, 0) + 1
    order = [impact.value for impact in reversed(Impact)]
    lines.append("- Changes by impact: " + ", ".join(
        f"{impact} {impacts[impact]}" for impact in order if impact in impacts))
    deletions = sum(change.deletes for change in result.changes)
    lines.append(f"- Objects and mailboxes deleted: {deletions}"
                 + (" (the budget `--max-deletions` counts these)" if deletions else ""))
    if result.manual_actions:
        lines.append(f"- Manual actions: {len(result.manual_actions)} (see below)")
    lines.append("")
    return lines


def _md_scope(result: RunResult) -> list[str]:
    lines = ["## Scope", ""]
    if result.parameters:
        lines += ["Parameters:", ""]
        lines += [f"- {_md_cell(key)} = {_md_cell(value)}"
                  for key, value in result.parameters.items()]
        lines.append("")
    if result.selection_summary:
        lines += ["Selected by discovery (nothing outside this is touched; `--format json` "
                  "lists every object under `selection`):", ""]
        lines += [f"- {name.replace('_', ' ')}: {count}"
                  for name, count in result.selection_summary.items()]
        lines.append("")
    made = result.selection  # made afresh on each read: read once
    selection = made if isinstance(made, dict) else {}
    servers = selection.get("servers")
    if isinstance(servers, list) and servers:
        shown = [f"{s.get('name')} (Exchange {s.get('version')}, reads AD from {s.get('dc')})"
                 for s in servers if isinstance(s, dict)]
        lines += [f"Exchange servers: {_md_cell(', '.join(shown))}", ""]
    dcs = selection.get("dcs")
    if isinstance(dcs, list) and dcs:
        lines += [f"Domain controllers: {_md_cell(', '.join(str(dc) for dc in dcs))}", ""]
    lines += _md_selected_users(selection.get("users"))
    return lines if len(lines) > 2 else []


def _md_selected_users(users: object) -> list[str]:
    """Per selected user, when it was created and why the scope took it (kb842101), so an
    approver can catch an account the cancelled run did not create."""
    rows = [user for user in users if isinstance(user, dict) and user.get("reason")] \
        if isinstance(users, list) else []
    if not rows:
        return []
    lines = ["Selected users:", "", "| user | created | why selected |", "| --- | --- | --- |"]
    lines += [f"| {_md_cell(str(user.get('dn')))} | {_md_cell(str(user.get('when_created')))} "
              f"| {_md_cell(str(user.get('reason')))} |" for user in rows]
    return [*lines, ""]


def _md_risks(result: RunResult, steps: dict[str, list[ChangeRecord]]) -> list[str]:
    risks = [note.risk for step, changes in steps.items()
             if (note := notes(step, changes)).risk is not None]
    context = PLAYBOOK_NOTES.get(result.playbook, ()) if steps else ()
    if not risks and not context:
        return []
    lines = ["## Impact and risks", ""]
    lines += [f"- {_md_text(risk)}" for risk in risks]
    if context:
        lines += ["", "What users notice:", ""] + [f"- {_md_text(text)}" for text in context]
    lines.append("")
    return lines


def _md_rollback(result: RunResult, steps: dict[str, list[ChangeRecord]]) -> list[str]:
    if not steps:
        return []
    where = (f"`{result.run_dir}`" if result.run_dir and "`" not in result.run_dir
             else "the run directory of the apply (`<state dir>/runs/<run id>/`, "
                  "`remediate runs` lists them)")
    lines = ["## Rollback", "",
             f"Backups: {_md_text(where)}: `backups/ad/*.ldif` (each AD object before it was "
             "deleted or changed), `backups/mail/` (the mail exports), `journal.jsonl` (every "
             "change, when; `remediate show-run RUN_ID`), `plan.json`.", ""]
    for step, changes in steps.items():
        rollback = notes(step, changes).rollback
        if rollback:
            lines += [f"### Rollback: {_md_cell(step)}", ""]
            lines += [f"- {_md_text(text)}" for text in rollback]
            lines.append("")
    order = ROLLBACK_ORDER.get(result.playbook)
    if order:
        lines += ["### Rollback: the whole run", "", _md_text(order), ""]
    return lines


def _md_text(text: str) -> str:
    """Our own Markdown prose (code spans, emphasis), kept on one line per list item."""
    return " ".join(text.splitlines())


def render_json(result: RunResult) -> str:
    return json.dumps(result.to_json(), indent=2, ensure_ascii=False)
