"""The Markdown report is the change ticket an approver reads: for each KB it renders through a
CommonMark parser (GFM tables) and holds the counts in words and numbers, the scope, a table per
step, the impact and risks, the manual actions and the rollback notes (where the backups are and
how to restore them)."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token
from rich.console import Console

from remediate.cli.main import main
from remediate.cli.render import render_markdown, render_text, value_text
from remediate.engine.runner import RunResult

SIZE = 9


pytestmark = pytest.mark.usefixtures("command_line")


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path | int) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(arg) for arg in argv])
    return code, capsys.readouterr().out


def world(capsys: pytest.CaptureFixture[str], tmp_path: Path, kb: str) -> Path:
    path = tmp_path / f"{kb}.json"
    code, _ = cli(capsys, "scenario", kb, "--size", SIZE, "--seed", 11, "--out", path)
    assert code == 0
    return path


def tokens(text: str) -> list[Token]:
    return MarkdownIt("commonmark", {"html": True}).enable("table").parse(text)


def sections(text: str) -> dict[str, list[Token]]:
    """The tokens under each heading (any level), by the heading's text."""
    found: dict[str, list[Token]] = {}
    current: list[Token] = []
    parsed = tokens(text)
    for index, token in enumerate(parsed):
        if token.type == "heading_open":
            current = found.setdefault(parsed[index + 1].content, [])
        elif index == 0 or parsed[index - 1].type != "heading_open":
            current.append(token)
    return found


def plain(section: list[Token]) -> str:
    """The text of a section as a reader sees it (code spans included)."""
    parts = []
    for token in section:
        if token.type == "inline":
            parts.append(
                "".join(
                    " " if child.type in ("softbreak", "hardbreak") else child.content
                    for child in token.children or []
                    if child.type in ("text", "code_inline", "softbreak", "hardbreak")
                )
            )
    return " ".join(parts)


def table(section: list[Token]) -> list[list[str]]:
    rows: list[list[str]] = []
    for index, token in enumerate(section):
        if token.type == "tr_open":
            rows.append([])
        elif token.type in ("th_open", "td_open"):
            rows[-1].append(plain([section[index + 1]]))
    return rows


def assert_no_raw_html(text: str) -> None:
    """Nothing from the world is read as HTML: names are escaped."""
    for token in tokens(text):
        assert token.type != "html_block", token.content
        for child in token.children or []:
            assert child.type != "html_inline", child.content


def plan_both(
    capsys: pytest.CaptureFixture[str], path: Path, kb: str, *extra: str
) -> tuple[dict[str, Any], str]:
    code, out = cli(capsys, "-q", "plan", kb, "--world", path, "--format", "json", *extra)
    assert code == 2
    code, markdown = cli(capsys, "-q", "plan", kb, "--world", path, "--format", "markdown", *extra)
    assert code == 2
    data: dict[str, Any] = json.loads(out)
    return data, markdown


def assert_tables_hold_every_change(data: dict[str, Any], found: dict[str, list[Token]]) -> None:
    counts = Counter(change["step"] for change in data["changes"])
    impacts = {change["step"]: change["impact"] for change in data["changes"]}
    assert table(found["Changes"]) == [["step", "impact", "changes"]] + [
        [step, impacts[step], str(count)] for step, count in counts.items()
    ]
    for step in counts:
        assert table(found[step]) == [["target", "action", "before", "after"]] + [
            [c["label"], c["action"], value_text(c["before"]), value_text(c["after"])]
            for c in data["changes"]
            if c["step"] == step
        ]


def test_kb842101_plan_is_a_change_ticket(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data, markdown = plan_both(capsys, world(capsys, tmp_path, "kb842101"), "kb842101")
    assert_no_raw_html(markdown)
    found = sections(markdown)
    summary = data["selection_summary"]
    users, boxes = summary["users"], summary["mailboxes"]
    assert users == SIZE and boxes > 0
    headings = list(found)
    assert headings[0] == "Plan kb842101: pending"
    for heading in (
        "Summary",
        "Scope",
        "Changes",
        "Impact and risks",
        "Manual actions",
        "Rollback",
        "Rollback: delete-ad-user",
        "Rollback: purge-mailbox",
        "Rollback: the whole run",
    ):
        assert heading in headings, heading
    # the order an approver reads it in
    assert (
        headings.index("Summary")
        < headings.index("Changes")
        < headings.index("Impact and risks")
        < headings.index("Rollback")
    )
    said = plain(found["Summary"])
    assert f"delete {users} users in Active Directory" in said
    assert f"purge {boxes} mailboxes on EXCH01" in said
    assert (
        f"Needs confirmation (--yes or the prompt): delete {users} users in Active "
        f"Directory, purge {boxes} mailboxes on EXCH01"
    ) in said
    deletions = users + summary["child_objects"] + boxes
    assert f"Objects and mailboxes deleted: {deletions}" in said
    impacts = Counter(change["impact"] for change in data["changes"])
    assert f"destructive {impacts['destructive']}" in said
    scope = plain(found["Scope"])
    for key, value in data["parameters"].items():
        assert value in scope and key in scope
    assert f"users: {users}" in scope
    assert "EXCH01 (Exchange 2003" in scope
    assert_tables_hold_every_change(data, found)
    assert f"delete {users} users in Active Directory" in plain(found["delete-ad-user"])
    risks = plain(found["Impact and risks"])
    assert f"{users} user object(s)" in risks and "tombstone" in risks
    assert "purged from the store on EXCH01" in risks
    assert "Run Cleanup Agent" in plain(found["Manual actions"])
    rollback = plain(found["Rollback"]) + plain(found["Rollback: delete-ad-user"])
    for needle in (
        "backups/ad/*.ldif",
        "backups/mail/",
        "Restore-ADObject",
        "isDeleted",
        "1.2.840.113556.1.4.417",
        "ldifde -i -f",
        "the LDIF as the attribute",
    ):
        assert needle in rollback, needle
    restore = plain(found["Rollback: purge-mailbox"])
    for needle in ("ExMerge", "New-MailboxImportRequest", "backups/mail/EXCH01/"):
        assert needle in restore, needle
    assert "reconnect it" in plain(found["Rollback: the whole run"])


def test_kb278447_plan_is_a_change_ticket(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = world(capsys, tmp_path, "kb278447")
    data, markdown = plan_both(capsys, path, "kb278447", "-p", "purge_blank=true")
    assert_no_raw_html(markdown)
    found = sections(markdown)
    users = data["selection_summary"]["users"]
    services = sorted(
        c["label"].rpartition(" ")[2] for c in data["changes"] if c["step"] == "stop-service"
    )
    assert services
    said = plain(found["Summary"])
    assert f"stop {len(services)} services on EXCH01 ({', '.join(services)})" in said
    assert f"remove the Exchange attributes of {users} users in Active Directory" in said
    assert f"reconnect {users} mailboxes on EXCH01" in said
    assert f"purge {users} mailboxes on EXCH01" in said
    assert_tables_hold_every_change(data, found)
    risks = plain(found["Impact and risks"])
    assert "Delivery stops on EXCH01" in risks  # transport by role (realservers)
    assert f"{users} user(s) lose their Exchange attributes" in risks
    assert "no mailbox" in risks
    assert "From reconnect-mailbox until restore-recipient" in risks  # the policy's addresses
    assert "get back, as they were before the strip" in risks  # restore-recipient's own
    assert "Findings (not acted on)" in found  # the ambiguous user
    for heading, needles in {
        "Rollback: stop-service": ("net start",),
        "Rollback: remove-exchange-attributes": (
            "backups/ad/remove-exchange-attributes-*.ldif",
            "ldifde",
        ),
        "Rollback: reconnect-mailbox": ("Reconnect", "Connect-Mailbox"),
        "Rollback: purge-mailbox": ("New-MailboxImportRequest", "ExMerge"),
        "Rollback: restore-recipient": ("(before)", "ldifde -i"),
        "Rollback: the whole run": ("reconnect the blank mailbox",),
    }.items():
        for needle in needles:
            assert needle in plain(found[heading]), (heading, needle)


@pytest.mark.parametrize("kb", ["kb842101", "kb278447"])
def test_apply_report_names_the_backups_it_made(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kb: str
) -> None:
    path = world(capsys, tmp_path, kb)
    code, markdown = cli(
        capsys, "-q", "apply", kb, "--world", path, "--yes", "--format", "markdown"
    )
    assert code == 0
    assert_no_raw_html(markdown)
    found = sections(markdown)
    (headline,) = [h for h in found if h.startswith(f"Apply {kb} run ")]
    assert headline.endswith(": done")
    assert plain(found["Summary"]).startswith("This run did: ")
    cells = [plain([token]) for token in found[headline] if token.type == "inline"]
    run_dir = cells[cells.index("Run directory") + 1]  # the ticket's header table
    assert cells[cells.index("Organisation") + 1] == "corp.example"
    assert run_dir in plain(found["Rollback"])
    assert list((Path(run_dir) / "backups" / "ad").glob("*.ldif"))
    assert [p for p in (Path(run_dir) / "backups" / "mail").rglob("*") if p.is_file()]
    # applied again: nothing to do, nothing to roll back
    code, again = cli(
        capsys, "-q", "plan", kb, "--world", Path(run_dir) / "world.json", "--format", "markdown"
    )
    assert code == 0
    assert "No changes." in again
    assert "Rollback" not in sections(again)


def test_the_readme_documents_every_field_of_the_json_result(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``remediate.result/1`` is documented field by field, and so is each change."""
    readme = Path(__file__).resolve().parent.parent / "README.md"
    parsed = tokens(readme.read_text(encoding="utf-8"))
    fields: list[str] = []
    heading, in_table, first_cell = "", False, False
    for index, token in enumerate(parsed):
        if token.type == "heading_open":
            heading = plain([parsed[index + 1]])
        elif token.type == "table_open":
            in_table = heading == "remediate.result/1" and not fields
        elif token.type == "table_close":
            in_table = False
        elif token.type == "tr_open":
            first_cell = True
        elif in_table and token.type == "td_open" and first_cell:
            fields.append(plain([parsed[index + 1]]))
            first_cell = False
    data, _ = plan_both(capsys, world(capsys, tmp_path, "kb842101"), "kb842101")
    assert fields == list(data)
    cells = [token.content for token in parsed if token.type == "inline"]
    changes_row = cells[cells.index("`changes`") + 2]  # field, type, meaning
    for key in data["changes"][0]:
        assert f"`{key}`" in changes_row, key


def test_warnings_and_skipped_targets_are_reported_in_text_and_markdown() -> None:
    """A stale saved plan's warning and the targets ``--skip-drifted`` left out are shown to
    people too, not only in JSON."""
    result = RunResult(
        mode="apply",
        playbook="kb842101",
        state="done",
        parameters={},
        warnings=["the plan is 30.0 hours old (over 24.0)"],
        skipped=["CN=a_b,DC=corp: uSNChanged planned 5, now 9"],
    )
    stream = io.StringIO()
    render_text(result, Console(file=stream, width=10_000, highlight=False))
    text = stream.getvalue()
    assert "warning: the plan is 30.0 hours old (over 24.0)" in text
    assert (
        "skipped (drifted since the plan, not applied): CN=a_b,DC=corp: uSNChanged planned 5, now 9"
    ) in text
    found = sections(render_markdown(result))
    assert plain(found["Warnings"]) == "the plan is 30.0 hours old (over 24.0)"
    assert plain(found["Skipped (drifted since the plan, not applied)"]) == (
        "CN=a_b,DC=corp: uSNChanged planned 5, now 9"
    )
