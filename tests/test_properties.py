"""Properties of both playbooks over scenario worlds of any seed, small size and any version:
plan == apply, a second apply changes nothing, and planning never changes the world."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from kb_support import KBS, load, parameters, scenario, snapshot

from remediate import Engine, get_playbook
from remediate.engine.runner import EXIT_DONE, EXIT_PENDING
from remediate.fakes import SimulatedCrash
from remediate.fakes.scenarios import VERSIONS
from remediate.testing import apply_confirmed, change_keys

kbs = st.sampled_from(KBS)
sizes = st.integers(min_value=1, max_value=30)
seeds = st.integers(min_value=0, max_value=2**64)
versions = st.sampled_from(VERSIONS)


@settings(max_examples=20, deadline=None)
@given(name=kbs, size=sizes, seed=seeds, version=versions)
def test_apply_makes_exactly_the_planned_changes_and_a_second_apply_makes_none(
    name: str, size: int, seed: int, version: str
) -> None:
    doc = scenario(name, size, seed=seed, version=version)
    world = load(doc)
    playbook = get_playbook(name)
    with tempfile.TemporaryDirectory() as state:
        engine = Engine(state_dir=Path(state))

        planned = engine.plan(playbook, world, parameters(doc))
        applied = apply_confirmed(engine, playbook, world, parameters(doc))
        again = apply_confirmed(engine, playbook, world, parameters(doc))

    assert applied.state == "done", applied.error
    assert planned.changes
    assert change_keys(applied.changes) == change_keys(planned.changes)
    assert again.changes == []
    assert again.exit_code == EXIT_DONE


@settings(max_examples=20, deadline=None)
@given(name=kbs, size=sizes, seed=seeds, version=versions,
       crash_after=st.none() | st.integers(min_value=1, max_value=80))
def test_planning_never_changes_the_world_even_in_the_middle_of_a_repair(
    name: str, size: int, seed: int, version: str, crash_after: int | None
) -> None:
    doc = scenario(name, size, seed=seed, version=version)
    world = load(doc)
    playbook = get_playbook(name)
    with tempfile.TemporaryDirectory() as state:
        if crash_after is not None:  # an apply that died after some of its changes
            world.faults.crash_after(crash_after)
            with contextlib.suppress(SimulatedCrash):
                apply_confirmed(Engine(state_dir=Path(state)), playbook, world, parameters(doc))
            world.faults.clear()
    before = snapshot(world)
    with tempfile.TemporaryDirectory() as state:
        engine = Engine(state_dir=Path(state))

        plan = engine.plan(playbook, world, parameters(doc))

        assert not any(Path(state).iterdir()), "a plan wrote to the state directory"
    assert plan.exit_code in (EXIT_DONE, EXIT_PENDING), plan.error
    assert snapshot(world) == before
