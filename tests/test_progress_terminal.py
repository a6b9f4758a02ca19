"""Progress bars in a real terminal (a pty, pexpect): discovery and one bar per step over its
targets, on stderr, when stderr is a terminal and the output is for people; none into a pipe,
with ``--format json``, JSON events or ``-q``. They stop for the confirmation prompt. Every run
also writes its structlog events as JSON lines to ``<run dir>/log.jsonl``, whatever the console
shows."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from terminal_support import TIMEOUT, cli_environment, scenario_world, spawn_cli

from remediate.cli.main import main

SIZE = 7
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BAR = "━"
ANY_BAR = re.compile(rf"{BAR}+ \d+/(\d+|\?)")  # a progress bar, not a table's border


def step_bar(step: str, done: int, total: int) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(step)} +{BAR}+ {done}/{total} targets")


@pytest.fixture
def env(state_dir: Path) -> dict[str, str]:
    environment = cli_environment(state_dir, TERM="xterm-256color")
    environment.pop("COLUMNS", None)
    return environment


@pytest.fixture
def world(tmp_path: Path, env: dict[str, str]) -> Path:
    return scenario_world(tmp_path / "broken.json", env, size=SIZE, seed=8)


def at_terminal(env: dict[str, str], cwd: Path, *argv: str | Path) -> tuple[int, str]:
    """Run ``python -m remediate ARGV`` at a terminal; exit code and everything it showed,
    without colours and cursor movements."""
    child = spawn_cli(env, cwd, *argv, dimensions=(50, 200))
    child.expect(pexpect.EOF)
    shown = str(child.before)
    child.close()
    assert child.exitstatus is not None, child.signalstatus
    return int(child.exitstatus), ANSI.sub("", shown)


def test_plan_at_a_terminal_shows_discovery_and_a_bar_per_step(
    world: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    code, shown = at_terminal(env, tmp_path, "plan", "kb842101", "--world", world)
    assert code == 2, shown
    assert "discover (kb842101)" in shown
    assert re.search(rf"discovered +{BAR}+ 1/1", shown)
    assert step_bar("delete-ad-user", SIZE, SIZE).search(shown), shown
    assert step_bar("verify", SIZE, SIZE).search(shown)
    assert "Plan kb842101: pending" in shown  # the result as well


def test_apply_at_a_terminal_shows_the_steps_it_applies(
    world: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    code, shown = at_terminal(env, tmp_path, "apply", "kb842101", "--world", world, "--yes")
    assert code == 0, shown
    assert re.search(rf"discovered: {SIZE} users, .*{BAR}+ 1/1", shown), shown
    assert re.search(rf"rehearsed: \d+ change\(s\) +{BAR}+ 1/1", shown)
    assert step_bar("delete-ad-user", SIZE, SIZE).search(shown)
    assert step_bar("purge-mailbox", 0, 0).search(shown) is None
    assert ": done" in shown


def test_the_bars_stop_for_the_prompt(world: Path, tmp_path: Path, env: dict[str, str]) -> None:
    child = spawn_cli(env, tmp_path, "apply", "kb842101", "--world", world, dimensions=(50, 200))
    child.expect_exact("Type 'yes' to continue: ")
    before = ANSI.sub("", str(child.before))
    assert "About to make these changes:" in before
    assert re.search(rf"rehearsed: \d+ change\(s\) +{BAR}+ 1/1", before), before
    # nothing redraws over the prompt while it waits for an answer
    child.expect(pexpect.TIMEOUT, timeout=1.5)
    assert ANY_BAR.search(str(child.before)) is None
    child.sendline("yes")
    child.expect(pexpect.EOF)
    after = ANSI.sub("", str(child.before))
    child.close()
    assert child.exitstatus == 0, after
    assert step_bar("delete-ad-user", SIZE, SIZE).search(after), after


@pytest.mark.parametrize("options", [["--format", "json"], ["-q"], ["--log-format", "json"]])
def test_no_bars_for_machines_or_when_quiet(
    world: Path, tmp_path: Path, env: dict[str, str], options: list[str]
) -> None:
    code, shown = at_terminal(env, tmp_path, "plan", "kb842101", "--world", world, *options)
    assert code == 2, shown
    assert ANY_BAR.search(shown) is None, shown
    assert "discover (kb842101)" not in shown


def test_no_bars_into_a_pipe(world: Path, tmp_path: Path, env: dict[str, str]) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "remediate", "apply", "kb842101", "--world", str(world), "--yes"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert ANY_BAR.search(ran.stderr) is None and "\x1b[" not in ran.stderr
    events = [json.loads(line) for line in ran.stderr.splitlines() if line.startswith("{")]
    assert {"run.started", "step.completed", "run.finished"} <= {e["event"] for e in events}


def test_every_event_goes_to_the_run_log_whatever_the_console_shows(
    world: Path,
    tmp_path: Path,
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REMEDIATE_STATE_DIR", str(state_dir))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = main(["-q", "apply", "kb842101", "--world", str(world), "--yes", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert "step.applied" not in captured.err  # -q: warnings and errors only
    run_dir = Path(result["run_dir"])
    logged = [
        json.loads(line)
        for line in (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert all(entry["run_id"] == result["run_id"] for entry in logged)
    assert all({"event", "level", "timestamp"} <= set(entry) for entry in logged)
    assert logged[0]["event"] == "run.started"
    assert logged[-1]["event"] == "run.finished"
    applied = [e for e in logged if e["event"] == "step.applied"]
    assert [(e["step"], e["target"]) for e in applied] == [
        (c["step"], c["target"]) for c in result["changes"]
    ]
    assert {e["level"] for e in applied} == {"debug"}
    # the journal's records are all in the log (plus the rehearsal's and the logging fields)
    journal = [
        json.loads(line)
        for line in (run_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    apply_events = [(e["event"], e["step"], e["target"]) for e in logged if e["mode"] == "apply"]
    assert apply_events == [(e["event"], e["step"], e["target"]) for e in journal]
    # a resume appends to the same log; a plan writes none
    code = main(["-q", "plan", "kb842101", "--world", str(run_dir / "world.json")])
    assert code == 0
    assert len((run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()) == len(logged)
