"""``show-run RUN_ID``: a run's journal as a timeline (time, event, step, targets and counts,
errors, manual actions), and as versioned JSON holding every journal record."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest

import remediate.cli.main as cli
from remediate import Engine
from remediate.cli.main import main
from remediate.engine.journal import read_journal
from remediate.fakes import FakeWorld, load_world

SIZE = 6
KB842101_STEPS = [
    "export-mail",
    "delete-ad-user",
    "wait-for-replication",
    "run-cleanup-agent",
    "purge-mailbox",
    "verify",
]
ROW = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})  (\S+)\s+(\S+)\s+(.*)$")


pytestmark = pytest.mark.usefixtures("command_line")


def cli_run(capsys: pytest.CaptureFixture[str], *argv: str | Path | int) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def broken(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    path = tmp_path / "broken.json"
    code, _, err = cli_run(
        capsys, "scenario", "kb842101", "--size", SIZE, "--seed", 2, "--out", path
    )
    assert code == 0, err
    return path


def apply(capsys: pytest.CaptureFixture[str], world: Path, code: int = 0) -> dict[str, Any]:
    ran, out, err = cli_run(
        capsys, "-q", "apply", "kb842101", "--world", world, "--yes", "--format", "json"
    )
    assert ran == code, err
    result: dict[str, Any] = json.loads(out)
    return result


def rows(text: str) -> list[tuple[str, str, str, str]]:
    found = []
    for line in text.splitlines():
        match = ROW.match(line)
        if match:
            found.append((match[1], match[2], match[3], match[4]))
    return found


def test_a_finished_run_as_a_timeline(capsys: pytest.CaptureFixture[str], broken: Path) -> None:
    result = apply(capsys, broken)
    run_id, changes = result["run_id"], result["changes"]
    code, out, _ = cli_run(capsys, "show-run", run_id)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Run {run_id}: kb842101, done"
    assert (
        f"{len(changes)} change(s) applied, 0 failed; {len(KB842101_STEPS)} step(s) "
        "completed" in lines[1]
    )
    assert f"Run directory: {result['run_dir']}" in out
    assert re.search(
        r"Backups: [1-9]\d* LDIF file\(s\) in .*backups/ad, [1-9]\d* mail "
        r"export\(s\) in .*backups/mail",
        out,
    )
    table = rows(out)
    events = [event for _, event, _, _ in table]
    assert events[0] == "run.started" and events[-1] == "run.finished"
    assert table[-1][3] == f"done, {len(changes)} change(s)"
    assert [step for _, event, step, _ in table if event == "step.completed"] == KB842101_STEPS
    assert [when for when, _, _, _ in table] == sorted(when for when, _, _, _ in table)
    discovered = next(details for _, event, _, details in table if event == "run.discovered")
    assert f"selected {SIZE} users" in discovered
    applying = [(step, details) for _, event, step, details in table if event == "step.applying"]
    assert ("delete-ad-user", f"{SIZE} target(s) on directory") in applying
    assert any(
        event == "step.manual"
        and details.startswith("MANUAL ACTION: On EXCH01 open Exchange System Manager")
        for _, event, _, details in table
    )
    # per-target events only with --all
    assert "step.applied" not in events
    assert re.search(r"\(\d+ per-target event\(s\) not shown: --all lists every one\)", out)
    code, every, _ = cli_run(capsys, "show-run", run_id, "--all")
    assert code == 0
    applied = [details for _, event, _, details in rows(every) if event == "step.applied"]
    assert len(applied) == len(changes)
    first = changes[0]
    assert applied[0].startswith(f"{first['label']}: {first['action']}, ")
    assert "resume" not in out


def test_json_holds_every_journal_record(capsys: pytest.CaptureFixture[str], broken: Path) -> None:
    result = apply(capsys, broken)
    code, out, _ = cli_run(capsys, "show-run", result["run_id"], "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["format"] == "remediate.run/1"
    assert (data["run_id"], data["playbook"], data["state"]) == (
        result["run_id"],
        "kb842101",
        "done",
    )
    assert data["applied"] == len(result["changes"]) and data["failed"] == 0
    assert data["completed_steps"] == KB842101_STEPS
    assert data["run_dir"] == result["run_dir"]
    journal = read_journal(Path(result["run_dir"]) / "journal.jsonl").records
    assert data["events"] == journal


def test_a_failed_run_shows_the_error_and_how_to_continue(
    capsys: pytest.CaptureFixture[str], broken: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def load(path: Path | str) -> FakeWorld:
        world = load_world(path)
        world.faults.fail("exchange.purge_mailboxes", kind="permanent", times=100)
        return world

    monkeypatch.setattr(cli, "load_world", load)
    result = apply(capsys, broken, code=1)
    monkeypatch.setattr(cli, "load_world", load_world)
    code, out, _ = cli_run(capsys, "show-run", result["run_id"])
    assert code == 0
    assert out.splitlines()[0] == f"Run {result['run_id']}: kb842101, failed"
    failed = [(step, details) for _, event, step, details in rows(out) if event == "step.failed"]
    assert len(failed) == 1
    step, details = failed[0]
    assert step == "purge-mailbox"
    assert details.startswith("FAILED ") and "injected permanent fault" in details
    finished = [details for _, event, _, details in rows(out) if event == "run.finished"]
    assert finished[-1].startswith("failed, ERROR: ")
    assert out.rstrip().endswith(f"continue with: remediate resume {result['run_id']}")
    code, listed, _ = cli_run(capsys, "runs")
    assert code == 0
    header, line = listed.splitlines()
    assert header.startswith("run id\tplaybook\t")
    assert line.startswith(f"{result['run_id']}\tkb842101\t")
    assert f"\tfailed\t{len(result['changes'])} change(s), 1 failed\tworld " in line


def test_a_paused_run_shows_the_manual_action(
    capsys: pytest.CaptureFixture[str], broken: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "Engine", functools.partial(Engine, manual_deadline_s=3600.0))
    result = apply(capsys, broken, code=2)
    monkeypatch.setattr(cli, "Engine", Engine)
    code, out, _ = cli_run(capsys, "show-run", result["run_id"])
    assert code == 0
    assert out.splitlines()[0] == f"Run {result['run_id']}: kb842101, paused"
    paused = [(step, details) for _, event, step, details in rows(out) if event == "run.paused"]
    assert paused and paused[0][0] == "run-cleanup-agent"
    assert "Run Cleanup Agent" in paused[0][1]
    assert "continue with: remediate resume" in out
    # resumed: the timeline shows the resume and the rest of the run
    code, _, err = cli_run(capsys, "-q", "resume", result["run_id"])
    assert code == 0, err
    code, out, _ = cli_run(capsys, "show-run", result["run_id"])
    resumed = [details for _, event, _, details in rows(out) if event == "run.resumed"]
    assert resumed == ["already done: export-mail, delete-ad-user, wait-for-replication"]
    assert out.splitlines()[0].endswith(", done")


def test_a_refused_run(capsys: pytest.CaptureFixture[str], broken: Path) -> None:
    code, out, _ = cli_run(capsys, "-q", "apply", "kb842101", "--world", broken, "--format", "json")
    assert code == 3
    run_id = json.loads(out)["run_id"]
    code, out, _ = cli_run(capsys, "show-run", run_id)
    assert code == 0
    finished = [details for _, event, _, details in rows(out) if event == "run.finished"]
    assert len(finished) == 1
    assert finished[0].startswith("refused, ERROR: confirmation: not confirmed")
    assert "run.approved" not in out
    assert "resume" not in out  # nothing was changed: a new apply, not a resume


@pytest.mark.parametrize("run_id", ["nope", "20990101T000000Z-kb842101-abcdef"])
def test_an_unknown_run(capsys: pytest.CaptureFixture[str], run_id: str) -> None:
    code, out, err = cli_run(capsys, "show-run", run_id)
    assert code == 1
    assert out == ""
    assert "remediate runs" in err
