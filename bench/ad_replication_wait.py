"""Benchmark: how long after the last DC converges the wait-for-replication step finishes
(target: at most one poll interval, the one in which it converged).

    python bench/ad_replication_wait.py [--fakes-only] [--size 20]
    python bench/ad_replication_wait.py --concurrency [--dcs 4 16 40] [--latency 1 5]

Fakes (virtual clock): kb842101 on its scenario (Exchange 2010, so no manual step), with the
slowest DC's replication delay set to each of several values; the deletes all land at one
virtual moment, so the last DC converges at that moment plus the delay.
Samba pair (real time; root, Samba installed: scripts/install-samba.sh): two DCs with automatic
replication off (tests/samba_pair.py); kb842101 deletes users on the first, and a chosen time
after the wait step starts polling, ``samba-tool drs replicate`` brings the deletes to the
second: it has converged when that command returns.
Each line: when it converged and when the step finished (seconds after the wait began), the
latency, and the poll interval in which it converged.

``--concurrency`` (fakes, virtual time): kb842101 with N DCs lagging 300 s behind the writable
one and ``--latency`` seconds per directory call; the wait step's duration with the DCs polled
at most ``--parallel`` at a time (the engine's bound for Exchange servers: before) and all at
once (now), at --parallel 1 and at the default, old and new alternating.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ad_support import quiet, samba_dc, with_playbook  # noqa: F401  (tests/ on the path)
from samba_pair import BASE_DN, SambaPair, in_namespace, start_pair, stop_pair

from remediate.adapters.ldap import ConnectionSettings, LdapDirectory
from remediate.engine import events as ev
from remediate.engine.journal import JournalRecord
from remediate.engine.parallel import DEFAULT_PARALLEL
from remediate.engine.runner import Engine, Safety
from remediate.fakes import world_from_json
from remediate.fakes.scenarios import SCENARIOS
from remediate.gcpolicy import program_collector
from remediate.playbooks import get_playbook
from remediate.steps.replication import WaitForReplication

WAIT = "wait-for-replication"


class WaitTimes:
    """When (by ``now``) the wait step started, polled without success, and finished."""

    def __init__(self, now: Callable[[], float], on_start: Callable[[], None] = lambda: None):
        self._now = now
        self._on_start = on_start
        self.started: float | None = None
        self.polls: list[float] = []
        self.finished: float | None = None

    def __call__(self, record: JournalRecord) -> None:
        if not str(record.get("step") or "").startswith(WAIT) or record.get("mode") != "apply":
            return
        if record["event"] == ev.STEP_APPLYING and self.started is None:
            self.started = self._now()
            self._on_start()
        elif record["event"] == ev.STEP_WAITING:
            self.polls.append(self._now())
        elif record["event"] == ev.STEP_VERIFIED:
            self.finished = self._now()

    def report(self, converged: float, **more: Any) -> dict[str, Any]:
        assert self.started is not None and self.finished is not None
        last_failed = max((poll for poll in self.polls if poll <= converged), default=None)
        following = min(poll for poll in [*self.polls, self.finished] if poll > converged)
        interval = following - last_failed if last_failed is not None else 0.0
        latency = self.finished - converged
        return {
            **more,
            "converged_after_s": round(converged - self.started, 2),
            "finished_after_s": round(self.finished - self.started, 2),
            "latency_s": round(latency, 2),
            "poll_interval_s": round(interval, 2),
            "within_one_interval": latency <= interval,
        }


def on_fakes(delay_s: float, size: int) -> dict[str, Any]:
    data = SCENARIOS["kb842101"](size, 1, version="2010")
    directory = data["directory"]
    assert isinstance(directory, dict)
    for dc in directory["dcs"]:
        if dc["replication_delay_s"]:
            dc["replication_delay_s"] = delay_s
    world = world_from_json(data)
    start = world.clock.now()

    def seconds() -> float:
        return (world.clock.now() - start).total_seconds()

    times = WaitTimes(seconds)
    deleted_at: list[float] = []

    def deletes(record: JournalRecord) -> None:
        if (
            record["event"] == ev.STEP_APPLIED
            and record.get("mode") == "apply"
            and str(record.get("step")).startswith("delete-ad-user")
        ):
            deleted_at.append(seconds())

    parameters = data["scenario"]["parameters"]  # type: ignore[index]
    with tempfile.TemporaryDirectory() as state:
        engine = Engine(state_dir=Path(state), subscribers=(times, deletes))
        result = engine.apply(
            get_playbook("kb842101"), world, parameters, safety=Safety(confirm=lambda _: True)
        )
    assert result.exit_code == 0, result.error
    return times.report(max(deleted_at) + delay_s, where="fakes", delay_s=delay_s)


def on_samba_pair(pair: SambaPair, trigger_after_s: float, users: int) -> dict[str, Any]:
    names = [name.lower() for name in pair.names]
    settings = ConnectionSettings(
        bind_user=pair.bind_user,
        password=pair.password,
        ca_file=pair.ca_file,
        addresses=dict(zip(names, pair.addresses, strict=True)),
    )
    converged: list[float] = []

    def replicate_later() -> None:
        time.sleep(trigger_after_s)
        pair.replicate(1, 0)
        converged.append(time.monotonic())

    times = WaitTimes(time.monotonic, lambda: threading.Thread(target=replicate_later).start())
    with in_namespace("sdc1"), tempfile.TemporaryDirectory() as state:
        directory = LdapDirectory(settings, domain="repl.test", base_dn=BASE_DN)
        first = directory.writable_dc()
        ou = f"OU=wait{int(time.time() * 1000)},{BASE_DN}"
        connection = directory.connection(first)
        connection.add(ou, ["organizationalUnit"])
        for number in range(users):
            connection.add(
                f"CN=wait user {number},{ou}",
                ["user"],
                {"sAMAccountName": f"w{int(time.time())}-{number}"},
            )
        pair.replicate(1, 0)  # both DCs hold the users before the run
        engine = Engine(state_dir=Path(state), subscribers=(times,))
        with_playbook(directory, engine, ou)
        directory.close()
    return times.report(converged[0], where="samba pair", trigger_after_s=trigger_after_s)


def wait_with_latency(dcs: int, latency_s: float, parallel: int, size: int) -> tuple[float, float]:
    """Virtual seconds of the wait step, and the apply's wall seconds."""
    data = SCENARIOS["kb842101"](size, 1, version="2010")
    directory = data["directory"]
    assert isinstance(directory, dict)
    directory["dcs"] = [{"name": "DC1", "replication_delay_s": 0}] + [
        {"name": f"DC{n}", "replication_delay_s": 300} for n in range(2, dcs + 2)
    ]
    world = world_from_json(data)
    world.set_latency(directory_s=latency_s)
    moments: dict[str, Any] = {}

    def note(record: JournalRecord) -> None:
        if record.get("mode") == "apply" and record.get("step") == WAIT:
            moments[str(record["event"])] = world.clock.now()

    parameters = data["scenario"]["parameters"]  # type: ignore[index]
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as state:
        engine = Engine(state_dir=Path(state), parallel=parallel, subscribers=(note,))
        result = engine.apply(
            get_playbook("kb842101"), world, parameters, safety=Safety(confirm=lambda _: True)
        )
    assert result.exit_code == 0, result.error
    spent = moments[ev.STEP_COMPLETED] - moments[ev.STEP_STARTED]
    return spent.total_seconds(), time.perf_counter() - wall


def concurrency_table(dcs_counts: list[int], latencies: list[float], size: int) -> None:
    print(
        "| lagging DCs | latency (s) | --parallel | before (s) | now (s) | wall before / now (s) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | --- |")
    bound = WaitForReplication.batches_at_once
    for dcs in dcs_counts:
        for latency in latencies:
            for parallel in (1, DEFAULT_PARALLEL):
                timed = {}
                for label, limit in (("before", None), ("now", bound)):  # alternating
                    WaitForReplication.batches_at_once = limit
                    timed[label] = wait_with_latency(dcs, latency, parallel, size)
                WaitForReplication.batches_at_once = bound
                (old, old_wall), (new, new_wall) = timed["before"], timed["now"]
                print(
                    f"| {dcs} | {latency:g} | {parallel} | {old:,.0f} | {new:,.0f} "
                    f"| {old_wall:.2f} / {new_wall:.2f} |",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fakes-only", action="store_true")
    parser.add_argument("--size", type=int, default=20)
    parser.add_argument("--concurrency", action="store_true")
    parser.add_argument("--dcs", type=int, nargs="+", default=[4, 16, 40])
    parser.add_argument("--latency", type=float, nargs="+", default=[1.0, 5.0])
    args = parser.parse_args()
    quiet()
    if args.concurrency:
        concurrency_table(args.dcs, args.latency, args.size)
        return
    for delay in (3.0, 30.0, 90.0, 300.0, 900.0, 3600.0):
        print(json.dumps(on_fakes(delay, args.size)), flush=True)
    if args.fakes_only:
        return
    pair = start_pair()
    try:
        for trigger in (2.0, 12.0):
            print(json.dumps(on_samba_pair(pair, trigger, args.size)), flush=True)
    finally:
        stop_pair(pair)


if __name__ == "__main__":
    with program_collector():  # as the command line runs
        main()
