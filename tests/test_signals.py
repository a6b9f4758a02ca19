"""Ctrl-C, SIGTERM (``timeout``, systemd) and SIGHUP (a closed terminal) in the middle of a
delete batch: the command line stops after the operation in flight, records exactly what was
changed (the result, the journal, ``runs`` and ``show-run`` agree with the world), saves the
world, says how to resume, and ``resume`` finishes the run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import pytest
from run_support import Case, journal, load, only_run
from test_kill_and_resume import applying, wait_for

from remediate.engine.stopping import stop_on_signals
from remediate.fakes import load_world, save_world

CASE = Case("kb842101", "2016", size=20)
DELETES = "delete-ad-user"
SLOW_DELETES = """
import time
from remediate.fakes import faults

_perform = faults.Faults.perform

def perform(self, operation, **kwargs):
    if operation == "directory.delete":
        time.sleep(0.1)
    return _perform(self, operation, **kwargs)

faults.Faults.perform = perform
"""


def cli(state_dir: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "remediate",
        "--state-dir",
        str(state_dir),
        "-q",
        "--log-format",
        "json",
        *args,
    ]


def users_deleted(run_dir: Path, candidates: set[str]) -> set[str]:
    """The ``user:GUID`` keys of ``candidates`` gone from the run's world, on its pinned DC."""
    world = load_world(run_dir / "world.json")
    dc = next(r["writable_dc"] for r in journal(run_dir) if r["event"] == "run.discovered")
    guids = {UUID(key.removeprefix("user:")) for key in candidates}
    live = world.directory.read(guids, dc)
    return {f"user:{guid}" for guid in guids - set(live)}


@pytest.mark.parametrize(
    ("signum", "durable"), [(signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGHUP, False)]
)
def test_a_signal_mid_batch_stops_after_the_operation_and_the_record_is_exact(
    tmp_path: Path, signum: signal.Signals, durable: bool
) -> None:
    world_file, state_dir = tmp_path / "broken.json", tmp_path / "state"
    save_world(load(CASE.document()), world_file)
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "sitecustomize.py").write_text(SLOW_DELETES)
    process = subprocess.Popen(
        cli(
            state_dir,
            "apply",
            CASE.playbook,
            "--world",
            str(world_file),
            "--yes",
            "--format",
            "json",
            *(["--durable-world"] if durable else []),
        ),
        env={**os.environ, "PYTHONPATH": str(tmp_path / "slow")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: process.poll() is not None or applying(state_dir, DELETES), "the delete batch"
        )
        time.sleep(0.4)  # some deletes, not all
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 1, err
    assert "Traceback" not in err
    result = json.loads(out)
    run_id = result["run_id"]
    how = "Ctrl-C" if signum == signal.SIGINT else signum.name
    assert (result["state"], result["error"]) == ("interrupted", f"interrupted ({how})")
    assert f"continue with: remediate resume {run_id}" in err
    run_dir = only_run(state_dir)
    records = journal(run_dir)
    announced = {
        t
        for r in records
        if r["event"] == "step.applying" and r["step"] == DELETES
        for t in r["targets"]
    }
    deleted = users_deleted(run_dir, announced)
    assert 0 < len(deleted) < CASE.size, "the signal did not land in the middle of the batch"
    journalled = [
        r["target"] for r in records if r["event"] == "step.applied" and r["step"] == DELETES
    ]
    reported = [c["target"] for c in result["changes"] if c["step"] == DELETES]
    assert sorted(journalled) == sorted(reported) == sorted(deleted)
    listed = json.loads(
        subprocess.run(
            cli(state_dir, "runs", "--format", "json"), capture_output=True, text=True, check=True
        ).stdout
    )
    applied = sum(r["event"] == "step.applied" for r in records)
    assert [(row["state"], row["applied"]) for row in listed] == [("interrupted", applied)]
    assert len(result["changes"]) == applied
    shown = json.loads(
        subprocess.run(
            cli(state_dir, "show-run", run_id, "--format", "json"),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert json.dumps(shown).count('"step.applied"') in (0, applied)

    resumed = subprocess.run(
        cli(state_dir, "resume", run_id, "--format", "json"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    every = [
        r["target"]
        for r in journal(run_dir)
        if r["event"] == "step.applied" and r["step"] == DELETES
    ]
    assert sorted(every) == sorted(announced)  # each user recorded deleted exactly once


def test_a_hangup_ignored_by_nohup_stays_ignored() -> None:
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, previous)
