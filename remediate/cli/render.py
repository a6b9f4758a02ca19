"""Results for people (text, Markdown) and machines (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from remediate.cli.console import IMPACT_STYLES
from remediate.cli.fit import shorten_middle, table_widths
from remediate.cli.notes import in_words
from remediate.cli.results import by_step, headline, no_changes, value_text
from remediate.cli.ticket import render_markdown
from remediate.engine.changes import ChangeRecord, Finding, Impact
from remediate.engine.runner import RunResult

ROWS_PER_STEP = 50
FINDINGS_PER_KIND = 5
# rich's width for output that is not drawn on a terminal: each row stays on one line, whole.
UNWRAPPED = 100_000
COLUMNS = ("target", "action", "before", "after")


def render_text(
    result: RunResult,
    console: Console,
    *,
    rows: int | None = ROWS_PER_STEP,
    findings: int | None = FINDINGS_PER_KIND,
) -> None:
    """The headline, the selection, findings grouped by kind (the first ``findings`` of each),
    a table per step (its first ``rows`` rows; 0: the step's line only; None: all), and at the
    end the grand total. Every value is shown as plain text (``Text``), never parsed as rich
    markup: a name like ``CN=Contractor [bold]`` or ``CN=a[/]b`` is legal in AD."""
    console.print(Text(headline(result), style="bold"))
    if result.selection_summary:
        console.print(
            Text(
                "Selected: "
                + ", ".join(
                    f"{count:,} {name.replace('_', ' ')}"
                    for name, count in result.selection_summary.items()
                )
            )
        )
    _text_findings(result.findings, console, findings)
    for warning in result.warnings:
        console.print(Text.assemble(("warning", "yellow"), f": {warning}"))
    for skipped in result.skipped:
        console.print(
            Text.assemble(
                ("skipped", "yellow"), f" (drifted since the plan, not applied): {skipped}"
            )
        )
    for step, changes in by_step(result.changes).items():
        _text_step(result.playbook, step, changes, console, rows)
    if not result.changes:
        console.print(no_changes(result))
    for instructions in dict.fromkeys(result.manual_actions):  # two steps may ask the same
        console.print(Text.assemble(("manual action", "bold yellow"), f": {instructions}"))
    if result.run_dir:
        console.print(Text(f"Run directory: {result.run_dir}"))
    if result.error:
        console.print(Text(result.error, style="red"))
    console.print(Text(grand_total(result), style="bold"))


def _text_findings(found: Sequence[Finding], console: Console, shown: int | None) -> None:
    by_kind: dict[str, list[Finding]] = {}
    for finding in found:
        by_kind.setdefault(finding.kind, []).append(finding)
    if not by_kind:
        return
    console.print(
        Text(
            "Findings (not acted on): "
            + ", ".join(f"{len(items):,} {kind}" for kind, items in by_kind.items())
        )
    )
    for kind, items in by_kind.items():
        for finding in items[:shown]:
            console.print(
                Text.assemble("  ", (kind, "yellow"), f" {finding.target}: {finding.message}")
            )
        if shown is not None and len(items) > shown:
            console.print(
                Text(
                    f"  ... and {len(items) - shown:,} more {kind} "
                    "(-v or --format json lists them all)"
                )
            )


def _text_step(
    playbook: str,
    step: str,
    changes: Sequence[ChangeRecord],
    console: Console,
    rows: int | None,
) -> None:
    impact = changes[0].impact.value
    words = "; ".join(in_words(playbook, step, changes))
    # the title on its own line: a table's title would wrap at the table's width
    console.print(
        Text.assemble(
            (f"{step} ({impact})", IMPACT_STYLES.get(impact, "") or "bold"),
            (f": {len(changes):,} change(s): {words}", "bold"),
        )
    )
    if rows == 0:
        return
    cells = [
        [change.label, change.action, value_text(change.before), value_text(change.after)]
        for change in changes[:rows]
    ]
    fit = console.width < UNWRAPPED  # a terminal, or COLUMNS: shorten to fit its width
    widths = table_widths(cells, COLUMNS, console.width) if fit else [0] * len(COLUMNS)
    table = Table(show_lines=False)
    for column, width in zip(COLUMNS, widths, strict=True):
        table.add_column(
            column, no_wrap=fit, overflow="ellipsis" if fit else "fold", max_width=width or None
        )
    for row in cells:
        table.add_row(
            *(
                Text(shorten_middle(cell, width) if fit else cell)
                for cell, width in zip(row, widths, strict=True)
            )
        )
    if rows is not None and len(changes) > rows:
        table.add_row(
            Text(f"... and {len(changes) - rows:,} more"),
            Text("-v or --format json lists all"),
            "",
            "",
        )
    console.print(table)


def grand_total(result: RunResult) -> str:
    """The last line, like Terraform's ``Plan: 1 to add, 0 to change, 0 to destroy``: every
    change counted by impact, so what matters is still on screen after a long run."""
    counts = {impact: 0 for impact in Impact}
    for change in result.changes:
        counts[change.impact] += 1
    total = len(result.changes)
    by_impact = ", ".join(
        f"{counts[impact]:,} {'read-only' if impact is Impact.READ else impact.value}"
        for impact in reversed(Impact)
        if counts[impact]
    )
    if result.mode == "plan":
        if result.state == "refused":
            return "Plan: refused; apply would fail (see above), nothing would be changed."
        return (
            f"Plan: {total:,} changes ({by_impact})."
            if total
            else "Plan: no changes; nothing to do."
        )
    verb = "Apply" if result.mode == "apply" else "Resume"
    if result.state == "done":
        return (
            f"{verb} complete: {total:,} changes ({by_impact})."
            if total
            else f"{verb} complete: no changes were needed."
        )
    return f"{verb} {result.state}: {total:,} changes before it stopped ({by_impact})."


def render_json(result: RunResult) -> str:
    return json.dumps(result.to_json(), indent=2, ensure_ascii=False)


__all__ = [
    "by_step",
    "grand_total",
    "headline",
    "no_changes",
    "render_json",
    "render_markdown",
    "render_text",
    "value_text",
]
