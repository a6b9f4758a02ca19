"""Plan == apply where several Exchange 2000/2003 servers read AD through different DCs.

The 2003 cleanup agent has no API: the run asks the operator and waits, and while it waits the
stores run the agent by themselves in their nightly maintenance. Apply used to wait for the first
server's store before even looking at the second: the nightly pass (which the rehearsal, playing
the operator at once, never reaches) then did the second server's change, and apply made one
change fewer than the plan listed (kb842101 size 400 seed 1: 803 planned, 802 applied)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kb_support import scenario_parameters
from run_support import YES

from remediate import Engine, RunPaused, get_playbook
from remediate.fakes.scenarios import Topology, scenario_world
from remediate.testing import assert_plan_matches_apply

KBS = ("kb842101", "kb278447")


pytestmark = pytest.mark.usefixtures("quiet")


@pytest.mark.parametrize("name", KBS)
def test_plan_matches_apply_with_two_2003_servers_at_size_400(name: str, tmp_path: Path) -> None:
    world = scenario_world(name, 400, 1, version="2003")
    parameters = scenario_parameters(world)

    applied = assert_plan_matches_apply(
        Engine(state_dir=tmp_path), get_playbook(name), world, parameters
    )

    servers = {
        record.endpoint for record in applied.changes if record.step.startswith("run-cleanup-agent")
    }
    assert servers == {"exchange:EXCH01", "exchange:EXCH02"}


@pytest.mark.parametrize("name", KBS)
def test_plan_matches_apply_with_two_2003_servers_reading_different_lagging_dcs(
    name: str, tmp_path: Path
) -> None:
    world = scenario_world(name, 12, 3, version="2003", topology=Topology(2, (900.0, 300.0)))
    assert {server.dc for server in world.exchange.servers()} == {"DC2", "DC3"}
    parameters = scenario_parameters(world)

    assert_plan_matches_apply(Engine(state_dir=tmp_path), get_playbook(name), world, parameters)


def test_a_paused_manual_step_names_every_servers_stores_at_once(tmp_path: Path) -> None:
    world = scenario_world("kb842101", 12, 3, version="2003", topology=Topology(2, (900.0, 300.0)))
    parameters = scenario_parameters(world)
    engine = Engine(state_dir=tmp_path, manual_deadline_s=600.0)

    with pytest.raises(RunPaused) as raised:
        engine.apply(get_playbook("kb842101"), world, parameters, safety=YES).raise_for_stop()

    assert "On EXCH01" in raised.value.instructions
    assert "On EXCH02" in raised.value.instructions
