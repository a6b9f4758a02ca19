"""Benchmark: servers in parallel over the real transport.

    python bench/parallel_winrm.py [--servers 8] [--delay 0.2] [--users-per-server 2]

kb278447 (Exchange 2016) applied through the real WinRM adapter (unmodified pywinrm, NTLM with
encryption) to one loopback WS-Management endpoint per Exchange server, each answering every
command after ``--delay`` seconds of real time, on the system clock (the directory is the fakes',
its DCs replicating at once so no step waits on them). Prints each Exchange step's wall time at
``--parallel 1`` and at the default, beside the slowest endpoint's own commands in that step
times the delay (the limit).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from kb_support import load, parameters, scenario
from winrm_endpoint.server import EndpointOptions
from winrm_support import serve

from remediate import Engine, get_playbook
from remediate.adapters.world import LiveWorld
from remediate.clock import SystemClock
from remediate.engine import events as ev
from remediate.engine.parallel import DEFAULT_PARALLEL
from remediate.gcpolicy import program_collector
from remediate.testing import apply_confirmed

DISCOVERY = "(discovery)"


class StepClock:
    """Each step's wall time, and the commands each endpoint answered during it."""

    def __init__(self, count: Any) -> None:
        self._count = count  # () -> commands per server so far
        self.seconds: dict[str, float] = {}
        self.commands: dict[str, Counter[str]] = {}
        self._started: dict[str, tuple[datetime, Counter[str]]] = {}

    def follow(self, record: dict[str, Any]) -> None:
        event, at = record["event"], datetime.fromisoformat(str(record["ts"]))
        # Discovery, from the run's start to its selection, counts as a step of its own.
        step = (
            DISCOVERY if event in (ev.RUN_STARTED, ev.RUN_DISCOVERED) else str(record.get("step"))
        )
        if event in (ev.STEP_STARTED, ev.RUN_STARTED):
            self._started[step] = (at, self._count())
        elif event in (ev.STEP_COMPLETED, ev.RUN_DISCOVERED) and step in self._started:
            began, before = self._started.pop(step)
            self.seconds[step] = (at - began).total_seconds()
            self.commands[step] = self._count() - before


def apply_once(doc: dict[str, Any], parallel: int, delay: float) -> StepClock:
    world = load(doc)
    with serve(world, EndpointOptions(command_delay_s=delay)) as site:
        steps = StepClock(lambda: Counter({n: e.calls() for n, e in site.endpoints.items()}))
        live = LiveWorld(
            world.directory,
            site.exchange(),
            rehearse=world.rehearsal,
            clock=SystemClock(),
            organisation=world.organisation,
        )
        with tempfile.TemporaryDirectory() as state:
            engine = Engine(state_dir=Path(state), parallel=parallel, subscribers=(steps.follow,))
            result = apply_confirmed(engine, get_playbook("kb278447"), live, parameters(doc))
        assert result.state == "done", result.error
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--users-per-server", type=int, default=2)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    doc = scenario(
        "kb278447", args.servers * args.users_per_server, version="2016", servers=args.servers
    )
    for dc in doc["directory"]["dcs"]:
        dc["replication_delay_s"] = 0
    one = apply_once(doc, 1, args.delay)
    many = apply_once(doc, DEFAULT_PARALLEL, args.delay)
    print(
        f"| step | commands | slowest endpoint's (s) | --parallel 1 (s) | --parallel "
        f"{DEFAULT_PARALLEL} (s) | {DEFAULT_PARALLEL} / slowest |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for step, seconds in one.seconds.items():
        commands = one.commands[step]
        if not commands.total():
            continue
        slowest = max(commands.values()) * args.delay
        print(
            f"| {step} | {commands.total()} | {slowest:.1f} | {seconds:.1f} "
            f"| {many.seconds[step]:.1f} | {many.seconds[step] / slowest:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    with program_collector():  # as the command line runs
        main()
