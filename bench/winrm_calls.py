"""Benchmark: WinRM commands per step per Exchange server during an apply.

    python bench/winrm_calls.py [--size 1700] [--versions 2003 2016] [--kb kb842101 kb278447]

Applies each KB's scenario through the real WinRM adapter (unmodified pywinrm, NTLM over HTTP)
against the loopback WS-Management endpoint the test suite uses (tests/winrm_endpoint), one
endpoint per Exchange server (two from 200 users on). Prints, per step and server, how many
targets the step changed there (the batch) and how many WinRM commands it sent: writes (the
change itself) and reads (observe, and the polls of the verify). Target: one write per batch.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from kb_support import load, parameters, scenario
from winrm_endpoint.exchange_host import DecodedCall
from winrm_support import WinRmWorld, serve

from remediate import Engine, get_playbook
from remediate.gcpolicy import program_collector
from remediate.testing import apply_confirmed

WRITES = frozenset(
    {"set_services", "clean_database", "purge", "disable", "reconnect", "export", "import"}
)
Row = tuple[str, str]  # (step, server)


class CallCounter:
    """Follows the apply's events (which step runs, how big each server's batch is) and counts
    the commands each server's endpoint decodes."""

    def __init__(self) -> None:
        self.step = "(before the steps)"  # discovery: the servers and their mailboxes
        self.batch: dict[Row, int] = {}
        self.writes: Counter[Row] = Counter()
        self.reads: Counter[Row] = Counter()
        self.operations: dict[Row, set[str]] = {}

    def follow(self, record: dict[str, Any]) -> None:
        if record.get("mode") != "apply":
            return
        if record.get("event") == "step.started":
            self.step = str(record.get("step"))
        elif record.get("event") == "step.applying":
            endpoint = str(record.get("endpoint"))
            if endpoint.startswith("exchange:"):
                targets = record.get("targets")
                count = len(targets) if isinstance(targets, list) else 0
                self.batch[self.step, endpoint.removeprefix("exchange:")] = count

    def count(self, server: str, call: DecodedCall) -> None:
        row = (self.step, server)
        (self.writes if call.operation in WRITES else self.reads)[row] += 1
        self.operations.setdefault(row, set()).add(call.operation)


def measure(kb: str, size: int, version: str) -> CallCounter:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    doc = scenario(kb, size, seed=5, version=version)
    fake = load(doc)
    counter = CallCounter()
    with tempfile.TemporaryDirectory() as state, serve(fake) as site:
        for server, host in site.hosts.items():
            host.before_run = lambda call, server=server: counter.count(server, call)
        engine = Engine(state_dir=Path(state), subscribers=(counter.follow,))
        applied = apply_confirmed(
            engine, get_playbook(kb), WinRmWorld(fake, site.exchange()), parameters(doc)
        )
    if applied.state != "done":
        raise SystemExit(f"{kb} {version}: the apply ended {applied.state}: {applied.error}")
    return counter


def print_table(kb: str, size: int, version: str, counter: CallCounter) -> None:
    print(f"\n{kb}, Exchange {version}, {size} users: WinRM commands per step and server")
    print(f"  {'step':38} {'server':7} {'batch':>5} {'writes':>6} {'reads':>5}  operations")
    rows = sorted(set(counter.writes) | set(counter.reads))
    for step, server in rows:
        row = (step, server)
        print(
            f"  {step:38} {server:7} {counter.batch.get(row, 0):5} {counter.writes[row]:6} "
            f"{counter.reads[row]:5}  {', '.join(sorted(counter.operations[row]))}"
        )
    print(f"  max writes per (step, server): {max(counter.writes.values(), default=0)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1700)
    parser.add_argument("--versions", nargs="+", default=["2003", "2016"])
    parser.add_argument("--kb", nargs="+", default=["kb842101", "kb278447"])
    args = parser.parse_args()
    for kb in args.kb:
        for version in args.versions:
            print_table(kb, args.size, version, measure(kb, args.size, version))


if __name__ == "__main__":
    with program_collector():  # as the command line runs
        main()
