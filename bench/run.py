"""Benchmark: plan and apply of an N-user scenario of each KB on the fakes.

    python bench/run.py [--size 10000] [--seed 1] [--kb kb842101 kb278447] [--version 2003]
                        [--no-gc-freeze]

For each KB, in a fresh subprocess (so peak memory is that KB's alone): wall time of plan and of
apply (apply rehearses first, as it always does), peak RSS, and the engine's own overhead per
target-step: total time minus the time spent inside the fake backends (every port call and the
rehearsal copy), divided by the number of (step, target) pairs the engine evaluated; the same in
CPU time of the process (``engine_cpu_ms_per_target_step``), which a loaded machine distorts less.
Peak RSS is reported for the whole process (``peak_rss_mb``) and split in two: building the
world from the scenario (``world_peak_mb``; ``scenario_world``, which reads each mailbox into the
world as it is made, never holding the scenario's whole JSON document) and the plan plus apply
that follow (``run_peak_mb``; Linux: the high-water mark is reset in between). Once built, the
world is frozen out of the cyclic garbage collector (``remediate.gcpolicy.settled``), and the
whole measurement runs in the program's collector policy, as the command line does
(``--no-gc-freeze`` to compare).
Targets: <= 0.2 ms per target-step, <= 1 GB peak.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from remediate.engine.runner import Engine, Safety
from remediate.fakes import FakeWorld
from remediate.fakes.scenarios import SCENARIOS, scenario_world

try:
    from remediate.gcpolicy import program_collector, settled
except ImportError:  # a commit before the policy moved out of the engine (bench/compare.py)
    from contextlib import nullcontext as program_collector

    def settled() -> None:
        gc.collect()
        gc.freeze()


from remediate.model import UserQuery
from remediate.playbooks import get_playbook


class Stopwatch:
    """Wall time and CPU time (this process) spent in what it times."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.calls = 0

    def timed(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # The calling thread's CPU time: a step's batches run on threads of their own, and
            # the process's would count the other batches' work as this call's.
            start, cpu_start = time.perf_counter(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.cpu_seconds += time.thread_time() - cpu_start
                self.calls += 1

        return wrapper


class TimedPort:
    """Every method call of the wrapped port counts as backend time."""

    def __init__(self, port: Any, watch: Stopwatch) -> None:
        self._port = port
        self._watch = watch

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._port, name)
        return self._watch.timed(value) if callable(value) else value


class TimedWorld:
    def __init__(self, world: FakeWorld, watch: Stopwatch) -> None:
        self._world = world
        self._watch = watch
        self.directory = TimedPort(world.directory, watch)
        self.exchange = TimedPort(world.exchange, watch)
        self.clock = world.clock
        self.organisation = world.organisation

    def attach_run(self, run_dir: Path | None) -> None:
        self._watch.timed(self._world.attach_run)(run_dir)

    def rehearsal(self) -> TimedWorld:
        copy = self._watch.timed(self._world.rehearsal)()
        return TimedWorld(copy, self._watch)


def rss_peak_mb() -> float:
    """The process's peak resident set size so far (VmHWM), in MB."""
    status = Path("/proc/self/status").read_text(encoding="ascii")
    kilobytes = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return round(int(kilobytes) / 1024, 1)


def reset_rss_peak() -> None:
    """Start the high-water mark again from the current RSS (Linux ``clear_refs``)."""
    Path("/proc/self/clear_refs").write_text("5", encoding="ascii")


def measure(
    kb: str, size: int, seed: int, version: str | None, *, freeze: bool = True
) -> dict[str, Any]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    playbook = get_playbook(kb)
    world = scenario_world(kb, size, seed, version=version)
    scenario = world.scenario or {}
    parameters = {str(k): str(v) for k, v in dict(scenario.get("parameters") or {}).items()}
    if freeze:  # as the command line does once the world is loaded
        settled()
    world_peak_mb = rss_peak_mb()
    # "At N users" means users in the directory: a KB's scenario size counts its affected users
    # (kb278447 adds half as many healthy ones, kb842101 some outside the OU).
    directory_users = len(world.directory.find_users(UserQuery()))
    reset_rss_peak()
    with tempfile.TemporaryDirectory() as state:
        engine = Engine(state_dir=Path(state))
        plan_watch = Stopwatch()
        cpu_start, times_start = time.process_time(), os.times()
        start = time.perf_counter()
        plan = engine.plan(playbook, TimedWorld(world, plan_watch), parameters)  # type: ignore[arg-type]
        plan_s = time.perf_counter() - start
        # RunResult.selection before issue 18 (bench/compare.py runs older commits too)
        chosen = plan.selection_json() if hasattr(plan, "selection_json") else plan.selection
        selection = playbook.load_selection(chosen)
        target_steps = sum(len(step.targets) for step in playbook.steps(selection))
        del plan, selection  # what an operator's plan command would have let go by now
        apply_watch = Stopwatch()
        start = time.perf_counter()
        applied = engine.apply(
            playbook,
            TimedWorld(world, apply_watch),
            parameters,  # type: ignore[arg-type]
            safety=Safety(confirm=lambda text: True),
        )
        apply_s = time.perf_counter() - start
        cpu_s = time.process_time() - cpu_start
        times = os.times()
    assert applied.state == "done", applied.error
    evaluated = target_steps * 3  # plan's rehearsal, apply's rehearsal, apply itself
    engine_s = plan_s + apply_s - plan_watch.seconds - apply_watch.seconds
    # CPU time is what a busy shared machine distorts least: waiting for a core counts in
    # wall time only.
    engine_cpu_s = cpu_s - plan_watch.cpu_seconds - apply_watch.cpu_seconds
    return {
        "kb": kb,
        "size": size,
        "directory_users": directory_users,
        "version": version or "default",
        "gc_freeze": freeze,
        "changes": len(applied.changes),
        "plan_s": round(plan_s, 3),
        "apply_s": round(apply_s, 3),
        "backend_s": round(plan_watch.seconds + apply_watch.seconds, 3),
        "backend_calls": plan_watch.calls + apply_watch.calls,
        "target_steps": evaluated,
        "engine_ms_per_target_step": round(1000 * engine_s / evaluated, 4),
        "engine_cpu_ms_per_target_step": round(1000 * engine_cpu_s / evaluated, 4),
        "cpu_s": round(cpu_s, 3),
        # In the kernel: mostly creating and fsyncing export files (one directory per server).
        "cpu_system_s": round(times.system - times_start.system, 3),
        "world_peak_mb": world_peak_mb,
        "run_peak_mb": rss_peak_mb(),
        "peak_rss_mb": max(world_peak_mb, rss_peak_mb()),
    }


def measure_apart(
    kb: str, size: int, seed: int, version: str | None, *, freeze: bool = True
) -> dict[str, Any]:
    """:func:`measure` in a fresh interpreter, so its peak memory is that run's alone."""
    command = (
        [sys.executable, __file__, "--one", "--kb", kb, "--size", str(size), "--seed", str(seed)]
        + (["--version", version] if version else [])
        + ([] if freeze else ["--no-gc-freeze"])
    )
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--version", default=None)
    parser.add_argument("--kb", nargs="+", default=sorted(SCENARIOS))
    parser.add_argument(
        "--no-gc-freeze",
        dest="freeze",
        action="store_false",
        help="leave the world to the cyclic garbage collector (to compare)",
    )
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(
            json.dumps(measure(args.kb[0], args.size, args.seed, args.version, freeze=args.freeze))
        )
        return
    for kb in args.kb:
        print(
            json.dumps(measure_apart(kb, args.size, args.seed, args.version, freeze=args.freeze)),
            flush=True,
        )


if __name__ == "__main__":
    with program_collector():  # as the command line runs
        main()
