"""A whole playbook run through WinRM on a two-server world with hundreds of targets: each step
changes each server with one WinRM command, and reads it with a handful (observe, verify)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from kb_support import load, parameters, scenario
from winrm_endpoint.exchange_host import DecodedCall
from winrm_support import WinRmWorld, serve

from remediate import Engine, get_playbook
from remediate.testing import apply_confirmed

pytestmark = pytest.mark.winrm

WRITES = {"set_services", "clean_database", "purge", "disable", "reconnect", "export", "import"}
SIZE = 200  # two Exchange servers from 200 users on


@pytest.mark.parametrize("name", ["kb842101", "kb278447"])
def test_each_step_changes_each_server_with_one_command(
    state_dir: Any, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = scenario(name, SIZE, seed=5, version="2016")
    fake = load(doc)
    current = {"step": "-"}

    def follow(record: dict[str, Any]) -> None:
        if record.get("event") == "step.started" and record.get("mode") == "apply":
            current["step"] = str(record.get("step"))

    engine = Engine(state_dir=state_dir, subscribers=(follow,))
    seen: Counter[tuple[str, str, str]] = Counter()
    with serve(fake) as site:
        for server, host in site.hosts.items():

            def record(call: DecodedCall, server: str = server) -> None:
                seen[(current["step"], server, call.operation)] += 1

            host.before_run = record
        applied = apply_confirmed(
            engine, get_playbook(name), WinRmWorld(fake, site.exchange()), parameters(doc)
        )
    assert applied.state == "done", applied.error
    assert len(site.hosts) == 2
    writes = {key: count for key, count in seen.items() if key[2] in WRITES}
    assert writes and set(writes.values()) == {1}, writes
    with capsys.disabled():
        print(f"\n{name}, {SIZE} users, 2 servers: WinRM commands per (step, server, operation)")
        for (step, server, operation), count in sorted(seen.items()):
            print(f"  {step:28} {server:7} {operation:15} {count}")
