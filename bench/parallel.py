"""Benchmark: a step across many Exchange servers, one server at a time vs in parallel.

    python bench/parallel.py [--servers 1 4 16 40] [--users-per-server 5] [--latency 1]

Applies each KB's scenario (Exchange 2016: every step automatic) on the fakes, its users spread
over N Exchange servers, with ``--latency`` seconds of virtual time per Exchange call. The fakes'
latency is virtual, so what is measured is the apply's *virtual* duration (what the same calls
would cost on servers answering after that delay), at ``--parallel 1``, at the default (8), and
with every server at once; wall time is printed beside it.

The limit is what no schedule of the steps can beat: the time that is not Exchange latency
(replication waits, directory calls), plus, for discovery and for each step, the latency of the
one server with the most calls in it (counted in the one-by-one run; discovery reads the
servers concurrently too).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from kb_support import load, parameters, scenario

from remediate import Engine, get_playbook
from remediate.engine import events as ev
from remediate.engine.parallel import DEFAULT_PARALLEL
from remediate.fakes import FakeWorld
from remediate.gcpolicy import program_collector
from remediate.testing import apply_confirmed

DISCOVERY = "(discovery)"


class CallsPerStep:
    """Counts each Exchange call under the step running (a one-by-one run: one step at a time)
    and the server it went to."""

    def __init__(self, world: FakeWorld) -> None:
        self.step = DISCOVERY
        self.calls: Counter[tuple[str, str]] = Counter()
        perform = world.faults.perform

        def counted(operation: str, **call: Any) -> Any:
            if operation.startswith("exchange."):
                self.calls[(self.step, str(call["endpoint"]))] += 1
            return perform(operation, **call)

        world.faults.perform = counted  # type: ignore[method-assign]

    def follow(self, record: dict[str, Any]) -> None:
        if record["event"] == ev.STEP_STARTED:
            self.step = str(record["step"])

    def slowest_per_step(self) -> int:
        most: dict[str, int] = {}
        for (step, _), count in self.calls.items():
            most[step] = max(most.get(step, 0), count)
        return sum(most.values())


def apply_once(
    kb: str, doc: dict[str, Any], parallel: int, latency: float, counter: bool = False
) -> tuple[float, float, CallsPerStep | None]:
    """Virtual seconds and wall seconds of one apply (and the calls, if asked)."""
    world = load(doc)
    world.set_latency(exchange_s=latency)
    calls = CallsPerStep(world) if counter else None
    subscribers = (calls.follow,) if calls else ()
    with tempfile.TemporaryDirectory() as state:
        engine = Engine(state_dir=Path(state), parallel=parallel, subscribers=subscribers)
        started, wall = world.clock.now(), time.perf_counter()
        result = apply_confirmed(engine, get_playbook(kb), world, parameters(doc))
        wall = time.perf_counter() - wall
    assert result.state == "done", result.error
    return (world.clock.now() - started).total_seconds(), wall, calls


def arguments(description: str) -> argparse.Namespace:
    """The worlds to measure (bench/discovery_verify.py takes the same), events silenced."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--servers", type=int, nargs="+", default=[1, 4, 16, 40])
    parser.add_argument("--users-per-server", type=int, default=5)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--kb", nargs="+", default=["kb278447", "kb842101"])
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    return parser.parse_args()


def main() -> None:
    args = arguments(__doc__.split("\n")[0])

    print(
        f"| playbook | servers | Exchange calls | --parallel 1 (s) | --parallel "
        f"{DEFAULT_PARALLEL} (s) | all at once (s) | limit (s) | default / limit "
        f"| all / limit | wall 1 / {DEFAULT_PARALLEL} / all (s) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for kb in args.kb:
        for servers in args.servers:
            doc = scenario(kb, servers * args.users_per_server, version="2016", servers=servers)
            one, wall_one, calls = apply_once(kb, doc, 1, args.latency, counter=True)
            assert calls is not None
            total = sum(calls.calls.values())
            limit = one - args.latency * (total - calls.slowest_per_step())
            default, wall_default, _ = apply_once(kb, doc, DEFAULT_PARALLEL, args.latency)
            every, wall_every, _ = apply_once(kb, doc, max(servers, 1), args.latency)
            print(
                f"| {kb} | {servers} | {total} | {one:,.0f} | {default:,.0f} | {every:,.0f} "
                f"| {limit:,.0f} | {default / limit:.2f} | {every / limit:.2f} "
                f"| {wall_one:.2f} / {wall_default:.2f} / {wall_every:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    with program_collector():  # as the command line runs
        main()
