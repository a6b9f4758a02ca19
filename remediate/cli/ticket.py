"""The change ticket (``--format markdown``): what an approver reads and signs.

A header (organisation, date, plan file and its sha256, operator, expected duration), a summary
in words and counts, the scope, findings, the changes (the first rows of each step: a ticket
must fit a ticketing system; every change is in the CSV attached beside it), the expected
duration step by step, impact and risks, manual actions and rollback. CommonMark with GFM
tables; every value from the world is escaped, so it renders as it is.
"""

from __future__ import annotations

import csv
import getpass
import hashlib
import io
import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from remediate.cli.durations import disruptions, span_text, step_durations
from remediate.cli.fit import ELLIPSIS
from remediate.cli.notes import in_words, risk, rollback
from remediate.cli.results import by_step, headline, no_changes, value_text
from remediate.engine.backups import write_durably
from remediate.engine.changes import ChangeRecord, Finding, Impact
from remediate.engine.runner import RunResult
from remediate.engine.wording import duration_text
from remediate.playbooks import find_playbook

# A ticket of 2,000 users listing every change was 1.7 MB: far past what a ticketing system
# takes. Each step's table shows this many rows; the attachment lists every change.
TICKET_ROWS_PER_STEP = 20
# Such a table cuts each before/after value to this many characters (the strip's before lists
# every attribute it clears, with every address: a row of it alone was over 1 KB).
TICKET_VALUE_CHARS = 100
TICKET_FINDINGS_PER_KIND = 20
ATTACHMENT_COLUMNS = ("step", "target", "label", "endpoint", "impact", "action", "before", "after")


def operator_from_environment() -> str:
    """``$REMEDIATE_OPERATOR`` (e.g. ``CORP\\jdoe``), else the login name, with the host."""
    named = os.environ.get("REMEDIATE_OPERATOR", "").strip()
    if named:
        return named
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name for this uid (a container)
        user = f"uid {os.getuid()}"
    return f"{user} on {socket.gethostname()}"


@dataclass(frozen=True, slots=True)
class TicketContext:
    """What the ticket's header says besides the result."""

    organisation: str | None = None
    operator: str = field(default_factory=operator_from_environment)
    date: datetime = field(default_factory=lambda: datetime.now(UTC))
    plan_file: str | None = None
    plan_sha256: str | None = None
    attachment: str | None = None  # every change, as CSV
    attachment_sha256: str | None = None


def write_attachment(changes: Sequence[ChangeRecord], path: Path) -> str:
    """Every change as CSV (``before``/``after`` as JSON), written durably; its sha256."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ATTACHMENT_COLUMNS)
    for change in changes:
        writer.writerow(
            (
                change.step,
                change.target,
                change.label,
                change.endpoint,
                change.impact.value,
                change.action,
                json.dumps(change.before, ensure_ascii=False, sort_keys=True),
                json.dumps(change.after, ensure_ascii=False, sort_keys=True),
            )
        )
    text = out.getvalue()
    write_durably(path, text)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Characters with a meaning in CommonMark / GFM inline text (emphasis, code, links, raw HTML,
# entities, strikethrough, table cells): a backslash before each shows it as it is.
_MD_SPECIAL = str.maketrans({char: "\\" + char for char in "\\`*_[]<>|&~!#"})


def _md_cell(value: str) -> str:
    """``value`` as literal Markdown text on one line (names may hold any of ``*_`<>|``)."""
    return " ".join(value.translate(_MD_SPECIAL).splitlines())


def _md_text(text: str) -> str:
    """Our own Markdown prose (code spans, emphasis), kept on one line per list item."""
    return " ".join(text.splitlines())


def render_markdown(
    result: RunResult,
    context: TicketContext | None = None,
    *,
    rows: int | None = TICKET_ROWS_PER_STEP,
) -> str:
    """The change ticket of a plan, apply or resume; ``rows`` None lists every change."""
    context = context or TicketContext()
    steps = by_step(result.changes)
    playbook = find_playbook(result.playbook)
    lines = [f"# {_md_cell(headline(result))}", ""]
    if playbook is not None:
        lines += [f"{_md_cell(playbook.title)} (KB: <{playbook.kb}>).", ""]
    lines += _md_header(result, context, steps)
    lines += _md_summary(result, steps)
    if result.warnings:
        lines += ["## Warnings", ""] + [f"- {_md_cell(w)}" for w in result.warnings] + [""]
    if result.skipped:
        lines += ["## Skipped (drifted since the plan, not applied)", ""]
        lines += [f"- {_md_cell(item)}" for item in result.skipped] + [""]
    lines += _md_scope(result)
    lines += _md_findings(result.findings)
    lines += _md_changes(result, steps, context, rows)
    lines += _md_durations(result, steps)
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


def _md_header(
    result: RunResult, context: TicketContext, steps: dict[str, list[ChangeRecord]]
) -> list[str]:
    durations = step_durations(result.playbook, steps, result.rehearsed_s, result.manual_steps)
    rows = [  # (name, Markdown): values from outside are escaped here
        ("Organisation", _md_cell(context.organisation or "not recorded")),
        ("Date (UTC)", context.date.astimezone(UTC).strftime("%Y-%m-%d %H:%M")),
        ("Operator", _md_cell(context.operator)),
    ]
    if context.plan_file:
        rows.append(("Plan file", _md_cell(context.plan_file)))
        rows.append(("Plan sha256", _md_cell(context.plan_sha256 or "-")))
    elif result.mode == "plan":
        rows.append(
            (
                "Plan file",
                "not saved (plan --out PLAN saves it, sealed with its sha256, for apply PLAN)",
            )
        )
    if result.run_dir:
        rows.append(("Run directory", _md_cell(result.run_dir)))
    if durations:
        typical = sum(entry.duration.typical for entry in durations)
        longest = sum(entry.duration.longest for entry in durations)
        rows.append(("Expected duration", span_text(typical, longest) + " (see Expected duration)"))
    if context.attachment:
        rows.append(
            (
                "Every change",
                _md_cell(f"{context.attachment} (CSV, sha256 {context.attachment_sha256})"),
            )
        )
    lines = ["| change | |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return [*lines, ""]


def _md_summary(result: RunResult, steps: dict[str, list[ChangeRecord]]) -> list[str]:
    if not steps:
        return []
    if result.mode == "plan":
        lead = "Applying this plan will"
    else:
        lead = "This run did" if result.state == "done" else "Before it stopped, this run did"

    def phrases(step: str) -> list[str]:
        return in_words(result.playbook, step, steps[step])

    said = [phrase for step in steps for phrase in phrases(step)]
    lines = ["## Summary", "", f"{lead}: {_md_cell(', '.join(said))}.", ""]
    gated = [
        phrase
        for step, changes in steps.items()
        if changes[0].impact.needs_confirmation
        for phrase in phrases(step)
    ]
    if gated:
        lines += [f"- Needs confirmation (`--yes` or the prompt): **{_md_cell(', '.join(gated))}**"]
    impacts: dict[str, int] = {}
    for change in result.changes:
        impacts[change.impact.value] = impacts.get(change.impact.value, 0) + 1
    order = [impact.value for impact in reversed(Impact)]
    lines.append(
        "- Changes by impact: "
        + ", ".join(f"{impact} {impacts[impact]:,}" for impact in order if impact in impacts)
    )
    deletions = sum(change.deletes for change in result.changes)
    lines.append(
        f"- Objects and mailboxes deleted: {deletions:,}"
        + (" (the budget `--max-deletions` counts these)" if deletions else "")
    )
    if result.manual_actions:
        lines.append(f"- Manual actions: {len(result.manual_actions)} (see below)")
    lines.append("")
    return lines


def _md_scope(result: RunResult) -> list[str]:
    lines = ["## Scope", ""]
    if result.parameters:
        lines += ["Parameters:", ""]
        lines += [
            f"- {_md_cell(key)} = {_md_cell(value)}" for key, value in result.parameters.items()
        ]
        lines.append("")
    if result.selection_summary:
        lines += [
            "Selected by discovery (nothing outside this is touched; `--format json` "
            "lists every object under `selection`):",
            "",
        ]
        lines += [
            f"- {name.replace('_', ' ')}: {count:,}"
            for name, count in result.selection_summary.items()
        ]
        lines.append("")
    made = result.selection_json()  # made afresh on each call: called once
    selection = made if isinstance(made, dict) else {}
    servers = selection.get("servers")
    if isinstance(servers, list) and servers:
        shown = [
            f"{s.get('name')} (Exchange {s.get('version')}, reads AD from {s.get('dc')})"
            for s in servers
            if isinstance(s, dict)
        ]
        lines += [f"Exchange servers: {_md_cell(', '.join(shown))}", ""]
    dcs = selection.get("dcs")
    if isinstance(dcs, list) and dcs:
        lines += [f"Domain controllers: {_md_cell(', '.join(str(dc) for dc in dcs))}", ""]
    lines += _md_selected_users(selection.get("users"))
    return lines if len(lines) > 2 else []


SELECTED_USERS_SHOWN = 50


def _md_selected_users(users: object) -> list[str]:
    """Per selected user, when it was created and why the scope took it (kb842101), so an
    approver can catch an account the cancelled run did not create; past a screenful the rest
    are in the JSON result's ``selection`` (the ticket stays small enough to attach)."""
    rows = (
        [user for user in users if isinstance(user, dict) and user.get("reason")]
        if isinstance(users, list)
        else []
    )
    if not rows:
        return []
    lines = ["Selected users:", "", "| user | created | why selected |", "| --- | --- | --- |"]
    lines += [
        f"| {_md_cell(str(user.get('dn')))} | {_md_cell(str(user.get('when_created')))} "
        f"| {_md_cell(str(user.get('reason')))} |"
        for user in rows[:SELECTED_USERS_SHOWN]
    ]
    if len(rows) > SELECTED_USERS_SHOWN:
        lines += [
            "",
            f"... and {len(rows) - SELECTED_USERS_SHOWN:,} more: every selected user, "
            "with when it was created and why, is under `selection` in `--format json`.",
        ]
    return [*lines, ""]


def _md_findings(found: Sequence[Finding]) -> list[str]:
    by_kind: dict[str, list[Finding]] = {}
    for finding in found:
        by_kind.setdefault(finding.kind, []).append(finding)
    if not by_kind:
        return []
    lines = [
        "## Findings (not acted on)",
        "",
        ", ".join(f"{len(items):,} {_md_cell(kind)}" for kind, items in by_kind.items())
        + " (`--format json` lists every one).",
        "",
    ]
    for kind, items in by_kind.items():
        lines += [
            f"- **{_md_cell(f.kind)}** {_md_cell(f.target)}: {_md_cell(f.message)}"
            for f in items[:TICKET_FINDINGS_PER_KIND]
        ]
        if len(items) > TICKET_FINDINGS_PER_KIND:
            lines.append(
                f"- ... and {len(items) - TICKET_FINDINGS_PER_KIND:,} more {_md_cell(kind)}"
            )
    return [*lines, ""]


def _md_changes(
    result: RunResult,
    steps: dict[str, list[ChangeRecord]],
    context: TicketContext,
    rows: int | None,
) -> list[str]:
    lines = ["## Changes", ""]
    if not steps:
        return [*lines, no_changes(result), ""]
    lines += ["| step | impact | changes |", "| --- | --- | --- |"]
    lines += [
        f"| {_md_cell(step)} | {changes[0].impact.value} | {len(changes):,} |"
        for step, changes in steps.items()
    ]
    lines.append("")
    every = (
        f"every change is in the attachment `{context.attachment}`"
        if context.attachment
        else "`--format json` lists every change"
    )
    for step, changes in steps.items():
        words = "; ".join(in_words(result.playbook, step, changes))
        lines += [
            f"### {_md_cell(step)}",
            "",
            f"*{changes[0].impact.value}*: {_md_cell(words)}.",
            "",
            "| target | action | before | after |",
            "| --- | --- | --- | --- |",
        ]
        shown = changes[:rows]
        cut = len(shown) < len(changes)
        lines += [
            f"| {_md_cell(c.label)} | {_md_cell(c.action)} | "
            f"{_md_cell(_cut(value_text(c.before), cut))} | "
            f"{_md_cell(_cut(value_text(c.after), cut))} |"
            for c in shown
        ]
        if cut:
            lines += ["", f"The first {rows} of {len(changes):,}; {_md_cell(every)}."]
        lines.append("")
    return lines


def _cut(text: str, cut: bool) -> str:
    """A value in a table that shows only the first rows of a step (the attachment holds every
    change whole): its start, to at most TICKET_VALUE_CHARS characters."""
    if not cut or len(text) <= TICKET_VALUE_CHARS:
        return text
    return text[: TICKET_VALUE_CHARS - 1] + ELLIPSIS


def _md_durations(result: RunResult, steps: dict[str, list[ChangeRecord]]) -> list[str]:
    durations = step_durations(result.playbook, steps, result.rehearsed_s, result.manual_steps)
    if not durations:
        return []
    lines = [
        "## Expected duration",
        "",
        "| step | expected | at most | why |",
        "| --- | --- | --- | --- |",
    ]
    for entry in durations:
        typical, longest = entry.duration.typical, entry.duration.longest
        lines.append(
            f"| {_md_cell(entry.step)} | {duration_text(typical)} | "
            f"{duration_text(longest) if longest > typical else '-'} | "
            f"{_md_cell(entry.duration.why) or '-'} |"
        )
    typical = sum(entry.duration.typical for entry in durations)
    longest = sum(entry.duration.longest for entry in durations)
    lines += ["", f"- Total: {span_text(typical, longest)}."]
    lines += [
        f"- {_md_cell(span.what)} ({_md_cell(span.first)} to {_md_cell(span.last)}): "
        f"{span_text(span.typical, span.longest)}."
        for span in disruptions(result.playbook, durations)
    ]
    lines += [
        "",
        "Expected times are the waits the procedure needs (replication, the cleanup "
        "agent, services), as rehearsed on this world's replication delays; the time the "
        "servers take for each change (LDAP writes, WinRM calls, the volume of mail "
        "exported and imported) comes on top and is not estimated.",
        "",
    ]
    return lines


def _md_risks(result: RunResult, steps: dict[str, list[ChangeRecord]]) -> list[str]:
    risks = [
        text
        for step, changes in steps.items()
        if (text := risk(result.playbook, step, changes)) is not None
    ]
    playbook = find_playbook(result.playbook)
    context = playbook.notice if steps and playbook is not None else ()
    if not risks and not context:
        return []
    lines = ["## Impact and risks", ""]
    lines += [f"- {_md_text(text)}" for text in risks]
    if context:
        lines += ["", "What users notice:", ""] + [f"- {_md_text(text)}" for text in context]
    lines.append("")
    return lines


def _md_rollback(result: RunResult, steps: dict[str, list[ChangeRecord]]) -> list[str]:
    if not steps:
        return []
    where = (
        f"`{result.run_dir}`"
        if result.run_dir and "`" not in result.run_dir
        else "the run directory of the apply (`<state dir>/runs/<run id>/`, "
        "`remediate runs` lists them)"
    )
    lines = [
        "## Rollback",
        "",
        f"Backups: {_md_text(where)}: `backups/ad/*.ldif` (each AD object before it was "
        "deleted or changed), `journal.jsonl` (every change, when; `remediate show-run "
        "RUN_ID`), `plan.json`. Mail exports are where each export step's rollback note "
        "below says (a world-file run: `backups/mail/`; real servers: the export directory "
        "of the server or share).",
        "",
    ]
    for step, changes in steps.items():
        texts = rollback(result.playbook, step, changes)
        if texts:
            lines += [f"### Rollback: {_md_cell(step)}", ""]
            lines += [f"- {_md_text(text)}" for text in texts]
            lines.append("")
    playbook = find_playbook(result.playbook)
    if playbook is not None and playbook.rollback_order:
        lines += ["### Rollback: the whole run", "", _md_text(playbook.rollback_order), ""]
    return lines
