"""The change ticket an approver signs: its header (organisation, UTC date, plan file and sha256,
operator, expected duration), a size that fits a ticketing system with every change attached
beside it as CSV, ``remediate show PLAN`` in any format, and a run that records which plan it
applied."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import pytest

from remediate.cli.main import main

Json = dict[str, object]


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def _state(monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> None:
    monkeypatch.setenv("REMEDIATE_STATE_DIR", str(state_dir))
    monkeypatch.setenv("REMEDIATE_OPERATOR", r"CORP\jdoe (change 4711)")


def scenario(
    capsys: pytest.CaptureFixture[str], path: Path, kb: str, size: int, version: str | None = None
) -> Path:
    extra = ["--version", version] if version else []
    code, _, err = cli(
        capsys, "scenario", kb, "--size", str(size), "--seed", "4", "--out", path, *extra
    )
    assert code == 0, err
    return path


def header(ticket: str) -> dict[str, str]:
    """The first table of the ticket: its header, name -> value."""
    rows = re.findall(r"^\| ([^|]+) \| (.+) \|$", ticket.split("## ", 1)[0], re.MULTILINE)
    return {name.strip(): value.strip() for name, value in rows if name.strip() != "---"}


def test_the_header_names_organisation_date_plan_sha256_operator_and_duration(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world = scenario(capsys, tmp_path / "w.json", "kb278447", 6)
    plan = tmp_path / "plan.json"
    code, ticket, _ = cli(
        capsys, "-q", "plan", "kb278447", "--world", world, "--out", plan, "--format", "markdown"
    )
    assert code == 2
    head = header(ticket)
    sealed = json.loads(plan.read_text(encoding="utf-8"))["sha256"]
    assert head["Organisation"] == "corp.example"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", head["Date (UTC)"])
    assert head["Operator"] == r"CORP\\jdoe (change 4711)"  # escaped for Markdown
    assert head["Plan file"] == str(plan).replace("_", "\\_")  # escaped for Markdown
    assert head["Plan sha256"] == sealed
    assert head["Expected duration"].startswith("about ")
    # on Exchange 2003 the cleanup agent is a manual action: the nightly run bounds it
    durations = ticket.split("## Expected duration", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"\| wait-for-replication \| 15 min \| 4 h \|", durations), durations
    assert re.search(r"\| run-cleanup-agent \| [^|]+ \| 25 h \| a manual action", durations)
    assert (
        "- transport stopped (no mail in or out on the affected servers) (stop-service "
        "to start-service): about " in durations
    )


def test_on_exchange_2013_the_cleanup_agent_is_not_a_day_long_wait(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world = scenario(capsys, tmp_path / "w.json", "kb842101", 4, version="2013")
    _, ticket, _ = cli(capsys, "-q", "plan", "kb842101", "--world", world, "--format", "markdown")
    durations = ticket.split("## Expected duration", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"\| run-cleanup-agent \| [^|]+ \| - \| - \|", durations), durations
    assert "25 h" not in durations


def test_a_large_ticket_stays_small_and_attaches_every_change(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world = scenario(capsys, tmp_path / "w.json", "kb278447", 300)
    plan = tmp_path / "plan.json"
    code, ticket, err = cli(
        capsys, "-q", "plan", "kb278447", "--world", world, "--out", plan, "--format", "markdown"
    )
    assert code == 2, err
    # Each step's table shows 20 rows with values cut short, so the size does not grow with the
    # users; it grows with the steps: 40 KB before kb278447 gained restore-recipient (20 more
    # rows) and update-recipient, and the impact and rollback text of the recipient's restore.
    assert len(ticket.encode("utf-8")) < 48_000
    assert "The first 20 of 300; every change is in the attachment" in ticket
    strip = ticket.split("### remove-exchange-attributes", 1)[1].split("\n### ", 1)[0]
    assert "…" in strip  # every address of a user is in the attachment, not in the ticket
    attachment = tmp_path / "plan.changes.csv"
    head = header(ticket)
    assert head["Every change"].startswith(str(attachment).replace("_", "\\_"))
    digest = hashlib.sha256(attachment.read_bytes()).hexdigest()
    assert digest in head["Every change"]
    rows = list(csv.DictReader(attachment.open(encoding="utf-8")))
    changes = json.loads(plan.read_text(encoding="utf-8"))["changes"]
    assert [(r["step"], r["target"]) for r in rows] == [(c["step"], c["target"]) for c in changes]
    assert json.loads(rows[0]["after"]) == changes[0]["after"]


def test_show_renders_a_saved_plan_in_every_format(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world = scenario(capsys, tmp_path / "w.json", "kb842101", 5)
    plan = tmp_path / "plan.json"
    _, planned, _ = cli(
        capsys, "-q", "plan", "kb842101", "--world", world, "--out", plan, "--format", "json"
    )
    code, ticket, err = cli(capsys, "show", plan, "--format", "markdown")
    assert code == 0, err
    head = header(ticket)
    assert head["Plan sha256"] == json.loads(plan.read_text(encoding="utf-8"))["sha256"]
    assert head["Expected duration"].startswith("about ")
    assert "## Rollback" in ticket and "## Findings" not in ticket
    code, shown, _ = cli(capsys, "show", plan, "--format", "json")
    assert json.loads(shown)["changes"] == json.loads(planned)["changes"]
    assert json.loads(shown)["selection_summary"] == json.loads(planned)["selection_summary"]
    code, text, _ = cli(capsys, "show", plan)
    assert text.splitlines()[0] == "Plan kb842101: pending"
    assert text.splitlines()[-1].startswith("Plan: ")


def test_show_refuses_an_edited_plan_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world = scenario(capsys, tmp_path / "w.json", "kb842101", 3)
    plan = tmp_path / "plan.json"
    cli(capsys, "-q", "plan", "kb842101", "--world", world, "--out", plan)
    plan.write_text(
        plan.read_text(encoding="utf-8").replace('"users"', '"Users"', 1), encoding="utf-8"
    )
    code, out, err = cli(capsys, "show", plan, "--format", "markdown")
    assert (code, out) == (3, "")
    assert err.count("\n") == 1 and str(plan) in err and "sha256" in err


def test_a_run_records_the_plan_it_applied_and_show_run_says_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world = scenario(capsys, tmp_path / "w.json", "kb842101", 4)
    plan = tmp_path / "plan.json"
    cli(capsys, "-q", "plan", "kb842101", "--world", world, "--out", plan)
    sealed = json.loads(plan.read_text(encoding="utf-8"))["sha256"]
    code, out, err = cli(capsys, "-q", "apply", plan, "--yes", "--format", "json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    code, timeline, _ = cli(capsys, "show-run", run_id)
    assert f"applied the saved plan {plan.resolve()} (sha256 {sealed})" in timeline
    code, recorded, _ = cli(capsys, "show-run", run_id, "--format", "json")
    assert json.loads(recorded)["source"]["plan"] == {"path": str(plan.resolve()), "sha256": sealed}
