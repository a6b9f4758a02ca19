"""The real command line, killed with SIGKILL in the middle of an apply, then resumed by another
process: it converges to the end state of an uninterrupted run. While the apply runs, a second
apply against the same organisation is refused, naming the holder of the lock. Every backend
operation of the killed process is slowed down (a sitecustomize on its PYTHONPATH) so that the
kill lands inside the delete batch; ``--durable-world`` keeps the fake servers' state on disk
as real servers would keep theirs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from crash_support import touched_outside
from run_support import (
    Case,
    Doc,
    apply,
    comparable,
    differences,
    journal,
    load,
    lost_items,
    only_run,
    quiet_events,
    snapshot,
)

from remediate import Engine
from remediate.fakes import load_world, save_world

CASE = Case("kb842101", "2016", size=40)
DELETES = "delete-ad-user"  # 40 deletes, 0.1 s each: the kill lands among them
SLOW = """
import time
from remediate.fakes import faults

_perform = faults.Faults.perform

def perform(self, *args, **kwargs):
    time.sleep(0.1)
    return _perform(self, *args, **kwargs)

faults.Faults.perform = perform
"""


def cli(state_dir: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "remediate",
        "--state-dir",
        str(state_dir),
        "--log-format",
        "json",
        *args,
    ]


def wait_for(condition: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def applying(state_dir: Path, step: str) -> bool:
    runs = list((state_dir / "runs").glob("*/journal.jsonl"))
    return bool(runs) and any(
        record["event"] == "step.applying" and record["step"] == step
        # complete lines only: the last may be mid-write (the intent is the last line written
        # before the batch, so dropping the last line, complete or not, saw it only afterwards)
        for record in map(json.loads, runs[0].read_text("utf-8").split("\n")[:-1] or ["{}"])
        if record
    )


@pytest.fixture
def world_file(tmp_path: Path) -> Path:
    path = tmp_path / "broken.json"
    save_world(load(CASE.document()), path)
    return path


@pytest.fixture
def slow_apply(tmp_path: Path, world_file: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``apply`` of CASE in its own process, slowed down, caught while it deletes users."""
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "sitecustomize.py").write_text(SLOW)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "slow")}
    process = subprocess.Popen(
        cli(
            tmp_path / "state",
            "apply",
            CASE.playbook,
            "--world",
            str(world_file),
            "--yes",
            "--durable-world",
        ),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: process.poll() is not None or applying(tmp_path / "state", DELETES),
            "the delete batch",
        )
        assert process.poll() is None, "the apply finished before it could be caught"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[Doc]:
    """The end state of an uninterrupted apply."""
    quiet = quiet_events()
    next(quiet)
    doc = CASE.document()
    world = load(doc)
    apply(Engine(state_dir=tmp_path / "reference"), CASE, world, doc)
    yield snapshot(world)
    next(quiet, None)


def test_a_second_apply_while_one_runs_is_refused_naming_the_holder(
    tmp_path: Path, world_file: Path, slow_apply: subprocess.Popen[bytes]
) -> None:
    holder = only_run(tmp_path / "state").name
    second = subprocess.run(
        cli(tmp_path / "state", "apply", CASE.playbook, "--world", str(world_file), "--yes"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert second.returncode == 3, second.stderr
    assert f"run {holder}, pid {slow_apply.pid} on " in second.stderr
    assert "another run holds the lock" in second.stderr
    assert only_run(tmp_path / "state").name == holder  # the second made no run of its own


def test_sigkill_in_the_middle_of_an_apply_then_resume_converges(
    tmp_path: Path, world_file: Path, slow_apply: subprocess.Popen[bytes], reference: Doc
) -> None:
    state_dir = tmp_path / "state"
    time.sleep(0.3)  # some deletes, not all
    slow_apply.send_signal(signal.SIGKILL)
    assert slow_apply.wait(timeout=30) == -signal.SIGKILL
    run_dir = only_run(state_dir)
    left = snapshot(load_world(run_dir / "world.json"))
    broken = snapshot(load_world(world_file))
    assert comparable(left) not in (comparable(broken), comparable(reference)), (
        "the kill did not land in the middle of the repair"
    )
    assert journal(run_dir)[-1]["event"] != "run.finished"

    resumed = subprocess.run(
        cli(
            state_dir,
            "resume",
            run_dir.name,
            "--durable-world",
            "--format",
            "json",
            "--save-world",
            str(tmp_path / "end.json"),
        ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert (result["state"], result["run_id"]) == ("done", run_dir.name)
    assert f"(run {run_dir.name}, pid {slow_apply.pid} on " in result["warnings"][0]
    assert result["warnings"][0].endswith("crashed or was killed; this resume continues it")
    end = snapshot(load_world(tmp_path / "end.json"))
    assert differences(comparable(end), comparable(reference)) == []
    doc = CASE.document()
    assert lost_items(snapshot(load(doc)), end, run_dir) == []
    assert touched_outside(CASE, doc, snapshot(load(doc)), end) == []
    # the deletes the killed process made were announced, never recorded: resume settled them
    deleted = [
        r["target"]
        for r in journal(run_dir)
        if r["event"] == "step.applied" and r["step"] == DELETES
    ]
    assert len(deleted) == len(set(deleted)) == CASE.size
    assert any(r.get("settled") for r in journal(run_dir) if r["event"] == "step.applied")
