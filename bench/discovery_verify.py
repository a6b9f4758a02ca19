"""Benchmark: discovery and verify over many Exchange servers, one at a time vs in parallel.

    python bench/discovery_verify.py [--servers 1 4 16 40] [--users-per-server 5] [--latency 1]

Each KB's scenario (Exchange 2016), its users spread over N servers, each Exchange call taking
``--latency`` seconds of virtual time (``FakeWorld.set_latency``). Discovery's time is the world
clock's advance during ``plan`` (the rehearsal that follows runs on a copy with its own clock);
verify's is the virtual time from its step's start to its end during ``apply``. Both at
``--parallel 1``, at the default and with every server at once; one JSON line per KB, server
count and setting (``python bench/compare.py OLD NEW -- bench/discovery_verify.py`` puts two
commits side by side). The figures are virtual, so exact and free of the machine's load; the
wall seconds of the plan plus apply are beside them.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from kb_support import load, parameters, scenario
from parallel import arguments

from remediate import Engine, get_playbook
from remediate.engine import events as ev
from remediate.engine.parallel import DEFAULT_PARALLEL
from remediate.testing import apply_confirmed


def measure(kb: str, doc: dict[str, Any], parallel: int, latency: float) -> dict[str, float]:
    playbook = get_playbook(kb)
    world = load(doc)
    world.set_latency(exchange_s=latency)
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as state:
        started = world.clock.now()
        Engine(state_dir=Path(state), parallel=parallel).plan(playbook, world, parameters(doc))
        discovery = (world.clock.now() - started).total_seconds()

    world = load(doc)
    world.set_latency(exchange_s=latency)
    moments: dict[str, datetime] = {}

    def follow(record: dict[str, Any]) -> None:
        if record.get("step") == "verify" and record["event"] in (
            ev.STEP_STARTED,
            ev.STEP_COMPLETED,
        ):
            moments[record["event"]] = world.clock.now()

    with tempfile.TemporaryDirectory() as state:
        engine = Engine(state_dir=Path(state), parallel=parallel, subscribers=(follow,))
        result = apply_confirmed(engine, playbook, world, parameters(doc))
    assert result.state == "done", result.error
    verify = (moments[ev.STEP_COMPLETED] - moments[ev.STEP_STARTED]).total_seconds()
    return {
        "discovery_s": discovery,
        "verify_s": verify,
        "wall_s": round(time.perf_counter() - wall, 2),
    }


def main() -> None:
    args = arguments(__doc__.split("\n")[0])
    for kb in args.kb:
        for servers in args.servers:
            doc = scenario(kb, servers * args.users_per_server, version="2016", servers=servers)
            for name, parallel in (
                ("1", 1),
                ("default", DEFAULT_PARALLEL),
                ("all", max(servers, 1)),
            ):
                print(
                    json.dumps(
                        {
                            "kb": kb,
                            "servers": f"{servers:02d}",
                            "parallel": name,
                            **measure(kb, doc, parallel, args.latency),
                        }
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
