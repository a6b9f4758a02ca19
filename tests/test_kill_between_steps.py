"""The real command line, SIGKILLed right after a step completes (after each wait: replication,
the cleanup agent), then resumed by another process: it converges to the end state of an
uninterrupted run, for both playbooks on Exchange 2003 and 2016, with ``--durable-world``.

A ``sitecustomize.py`` on the killed process's PYTHONPATH sends SIGKILL to the process itself
once the journal has made ``step.completed`` of the chosen step durable: the kill lands exactly
between two steps, where a wait has moved the servers' (virtual) clock and nothing else."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from crash_support import touched_outside
from run_support import (
    Case,
    apply,
    comparable,
    journal,
    load,
    lost_items,
    only_run,
    quiet_events,
    snapshot,
)

from remediate import Engine
from remediate.cli.main import main
from remediate.engine.journal import RunStore
from remediate.fakes import load_world, save_world

KILL_AFTER = """
import os, signal
from remediate.engine import events

_emit, _checkpoint = events.Events.emit, events.Events.checkpoint
STEP = os.environ["KILL_AFTER_STEP"]

def emit(self, event, **fields):
    _emit(self, event, **fields)
    if event == events.STEP_COMPLETED and self.mode == "apply" and fields.get("step") == STEP:
        self._kill = True

def checkpoint(self):
    _checkpoint(self)
    if getattr(self, "_kill", False):
        os.kill(os.getpid(), signal.SIGKILL)

events.Events.emit, events.Events.checkpoint = emit, checkpoint
"""

# After each wait, and after the step that follows a wait starts nothing yet: the kill points
# where the clock has moved and no change was made since the last save.
KILLS = [
    ("kb842101", "wait-for-replication"),
    ("kb842101", "run-cleanup-agent"),
    ("kb278447", "wait-for-replication"),
    ("kb278447", "run-cleanup-agent"),
    ("kb278447", "wait-for-replication-after-reconnect"),
    ("kb278447", "run-cleanup-agent-after-reconnect"),
]
HOURLY = 3600  # 2003 stores run the cleanup agent hourly here: the manual wait is short


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


def killed_apply(tmp_path: Path, case: Case, step: str) -> Path:
    """The run directory of an ``apply --durable-world`` SIGKILLed right after ``step``."""
    world_file = tmp_path / "broken.json"
    save_world(load(case.document()), world_file)
    (tmp_path / "kill").mkdir()
    (tmp_path / "kill" / "sitecustomize.py").write_text(KILL_AFTER)
    killed = subprocess.run(
        cli(
            tmp_path / "state",
            "apply",
            case.playbook,
            "--world",
            str(world_file),
            "--yes",
            "--durable-world",
        ),
        env={**os.environ, "PYTHONPATH": str(tmp_path / "kill"), "KILL_AFTER_STEP": step},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return only_run(tmp_path / "state")


@pytest.mark.parametrize("version", ["2003", "2016"])
@pytest.mark.parametrize(("playbook", "step"), KILLS, ids=[f"{p}-{s}" for p, s in KILLS])
def test_sigkill_right_after_a_step_then_resume_converges(
    tmp_path: Path, playbook: str, step: str, version: str
) -> None:
    case = Case(playbook, version, cleanup_interval_s=HOURLY if version == "2003" else None)
    doc = case.document()
    quiet = quiet_events()
    next(quiet)
    reference = load(doc)
    apply(Engine(state_dir=tmp_path / "reference"), case, reference, doc)
    next(quiet, None)
    state_dir = tmp_path / "state"

    run_dir = killed_apply(tmp_path, case, step)

    done = [r["step"] for r in journal(run_dir) if r["event"] == "step.completed"]
    assert done[-1] == step
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
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["state"] == "done"
    end = snapshot(load_world(tmp_path / "end.json"))
    assert comparable(end) == comparable(snapshot(reference))
    assert lost_items(snapshot(load(doc)), end, run_dir) == []
    assert touched_outside(case, doc, snapshot(load(doc)), end) == []


def test_a_resume_refused_because_the_run_is_live_leaves_its_world_file_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = Case("kb842101", "2016")
    run_dir = killed_apply(tmp_path, case, "delete-ad-user")
    world_file = run_dir / "world.json"
    before = (world_file.read_bytes(), world_file.stat().st_mtime_ns)
    organisation = load_world(world_file).organisation

    with RunStore(tmp_path / "state").lock(organisation, "someone-else"):
        code = main(
            [
                "--state-dir",
                str(tmp_path / "state"),
                "-q",
                "resume",
                run_dir.name,
                "--durable-world",
            ]
        )

    assert code == 3
    assert "another run holds the lock" in capsys.readouterr().err
    assert (world_file.read_bytes(), world_file.stat().st_mtime_ns) == before
