"""The confirmation prompt of ``apply`` without ``--yes``, at a real terminal (a pty).

It names the counts per step; only a typed ``yes`` applies; anything else, or end of input,
exits 3 and changes nothing. The prompt goes to stderr, so ``--format json > file`` still asks.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from terminal_support import TIMEOUT, cli_environment, scenario_world, spawn_cli

from remediate.fakes import load_world, world_to_json

SIZE = 12


@pytest.fixture
def env(state_dir: Path) -> dict[str, str]:
    return cli_environment(state_dir)


@pytest.fixture
def world(tmp_path: Path, env: dict[str, str]) -> Path:
    return scenario_world(tmp_path / "broken.json", env, size=SIZE, seed=4)


def spawn(env: dict[str, str], cwd: Path, *argv: str | Path) -> pexpect.spawn[str]:
    """``python -m remediate -q --log-format json ARGV`` at a terminal."""
    return spawn_cli(env, cwd, "-q", "--log-format", "json", *argv, dimensions=(40, 160))


@pytest.fixture
def mailboxes(world: Path, env: dict[str, str]) -> int:
    """How many mailboxes the plan purges."""
    planned = subprocess.run(
        [
            sys.executable,
            "-m",
            "remediate",
            "-q",
            "plan",
            "kb842101",
            "--world",
            str(world),
            "--format",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert planned.returncode == 2, planned.stderr
    count = int(json.loads(planned.stdout)["selection_summary"]["mailboxes"])
    assert count > 0
    return count


def expect_prompt(child: pexpect.spawn[str], mailboxes: int) -> str:
    """Wait for the prompt; the text before it, which must name the counts."""
    child.expect_exact("About to make these changes:")
    child.expect_exact("Type 'yes' to continue: ")
    shown = str(child.before)
    gated = "  <- needs confirmation"
    assert f"delete-ad-user (destructive): {SIZE} target(s) on directory{gated}" in shown
    assert f"purge-mailbox (destructive): {mailboxes} target(s) on exchange:EXCH01{gated}" in shown
    # every change is counted; what is reversible needs no confirmation
    assert re.search(
        r"export-mail \(reversible\): \d+ target\(s\) on exchange:EXCH01\r?\n", shown
    ), shown
    assert "wait-for-replication (read): " in shown
    assert "plan.json" in shown  # where every planned change can be read
    return shown


def finish(child: pexpect.spawn[str]) -> tuple[int, str]:
    child.expect(pexpect.EOF)
    rest = str(child.before)
    child.close()
    assert child.exitstatus is not None, child.signalstatus
    return int(child.exitstatus), rest


def world_state(path: Path) -> object:
    return world_to_json(load_world(path))


def test_answering_no_changes_nothing(
    world: Path, mailboxes: int, tmp_path: Path, env: dict[str, str]
) -> None:
    before = world.read_bytes()
    out = tmp_path / "out.json"
    child = spawn(env, tmp_path, "apply", "kb842101", "--world", world, "--save-world", out)
    expect_prompt(child, mailboxes)
    child.sendline("no")
    code, rest = finish(child)
    assert code == 3, rest
    assert "not confirmed" in rest
    assert "nothing was changed" in rest
    assert world.read_bytes() == before
    assert world_state(out) == world_state(world)


def test_end_of_input_changes_nothing(
    world: Path, mailboxes: int, tmp_path: Path, env: dict[str, str]
) -> None:
    out = tmp_path / "out.json"
    child = spawn(env, tmp_path, "apply", "kb842101", "--world", world, "--save-world", out)
    expect_prompt(child, mailboxes)
    child.sendeof()
    code, rest = finish(child)
    assert code == 3, rest
    assert "Traceback" not in rest
    assert world_state(out) == world_state(world)


def test_answering_yes_applies(
    world: Path, mailboxes: int, tmp_path: Path, env: dict[str, str]
) -> None:
    out = tmp_path / "out.json"
    child = spawn(env, tmp_path, "apply", "kb842101", "--world", world, "--save-world", out)
    expect_prompt(child, mailboxes)
    child.sendline("yes")
    code, rest = finish(child)
    assert code == 0, rest
    assert ": done" in rest
    assert world_state(out) != world_state(world)
    again = subprocess.run(
        [sys.executable, "-m", "remediate", "-q", "plan", "kb842101", "--world", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr


def test_the_prompt_shows_when_stdout_is_a_file(
    world: Path, mailboxes: int, tmp_path: Path, env: dict[str, str]
) -> None:
    """``apply ... --format json > result.json`` at a terminal: the prompt is on the terminal,
    the file holds only the result."""
    result = tmp_path / "result.json"
    command = (
        " ".join(
            shlex.quote(part)
            for part in [
                sys.executable,
                "-m",
                "remediate",
                "-q",
                "--log-format",
                "json",
                "apply",
                "kb842101",
                "--world",
                str(world),
                "--format",
                "json",
            ]
        )
        + f" > {shlex.quote(str(result))}"
    )
    child = pexpect.spawn(
        "/bin/bash", ["-c", command], env=env, cwd=str(tmp_path), encoding="utf-8", timeout=TIMEOUT
    )
    expect_prompt(child, mailboxes)
    child.sendline("yes")
    code, rest = finish(child)
    assert code == 0, rest
    data = json.loads(result.read_text(encoding="utf-8"))
    assert (data["state"], data["exit_code"]) == ("done", 0)
    assert sum(change["step"] == "delete-ad-user" for change in data["changes"]) == SIZE
