"""Properties of both playbooks over scenario worlds of any seed, small size and any version:
plan == apply, a second apply changes nothing, and planning never changes the world."""

from __future__ import annotations

import contextlib
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from kb_support import KBS, Doc, load, parameters, scenario, snapshot

from remediate import Engine, get_playbook
from remediate.engine.runner import EXIT_DONE, EXIT_PENDING
from remediate.fakes import SimulatedCrash
from remediate.fakes.scenarios import SCENARIOS, VERSIONS, Topology
from remediate.model import iso, utc
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


@st.composite
def multi_server_worlds(draw: st.DrawFn) -> tuple[str, Doc]:
    """A scenario world with several servers, each reading AD through its own DC with its own
    lag, the 2000/2003 stores running their own cleanup pass nightly or hourly, and the clock at
    any minute of the day (so that pass can fall into any wait of the run)."""
    name = draw(kbs)
    topology = Topology(
        draw(st.integers(min_value=2, max_value=3)),
        tuple(
            draw(
                st.lists(
                    st.sampled_from([0.0, 15.0, 300.0, 900.0, 3600.0, 14400.0]),
                    min_size=1,
                    max_size=3,
                )
            )
        ),
    )
    doc: Doc = SCENARIOS[name](
        draw(st.integers(min_value=1, max_value=12)),
        draw(seeds),
        version=draw(versions),
        topology=topology,
    )
    interval = draw(st.sampled_from([3600, 86400]))
    for server in doc["exchange"]["servers"]:
        server["cleanup_interval_s"] = interval
    day = utc("2026-11-02T00:00:00Z")  # after every time the scenarios hold
    doc["clock"] = iso(day + timedelta(minutes=draw(st.integers(0, 24 * 60 - 1))))
    return name, doc


@settings(max_examples=25, deadline=None)
@given(case=multi_server_worlds())
def test_plan_equals_apply_on_multi_server_worlds_with_different_lags(
    case: tuple[str, Doc],
) -> None:
    name, doc = case
    world = load(doc)
    playbook = get_playbook(name)
    with tempfile.TemporaryDirectory() as state:
        engine = Engine(state_dir=Path(state))

        planned = engine.plan(playbook, world, parameters(doc))
        applied = apply_confirmed(engine, playbook, world, parameters(doc))

    assert applied.state == "done", applied.error
    assert change_keys(applied.changes) == change_keys(planned.changes)


@settings(max_examples=20, deadline=None)
@given(
    name=kbs,
    size=sizes,
    seed=seeds,
    version=versions,
    crash_after=st.none() | st.integers(min_value=1, max_value=80),
)
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
