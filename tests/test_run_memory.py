"""What the run holds less of at 100,000 users, pinned to behave as before: the selection's JSON
made only when read, each step's targets made when it starts and let go when it ends, and
scenario worlds sharing repeated strings and tuples."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from remediate.engine.backups import MemoryBackups
from remediate.engine.changes import Impact
from remediate.engine.events import Events
from remediate.engine.execute import Executor
from remediate.engine.retry import RetryPolicy
from remediate.engine.runner import Engine, RunResult, Safety
from remediate.engine.step import Step, StepContext
from remediate.fakes import world_to_json
from remediate.fakes.scenarios import scenario_world
from remediate.playbooks import get_playbook
from remediate.steps.targets import UserTarget

SIZE = 40


def parameters(world: Any) -> dict[str, str]:
    scenario = world.scenario or {}
    return {str(k): str(v) for k, v in dict(scenario.get("parameters") or {}).items()}


@pytest.mark.parametrize("kb", ["kb278447", "kb842101"])
def test_the_selection_json_made_when_asked_is_the_selections_json(kb: str, tmp_path: Path) -> None:
    playbook = get_playbook(kb)
    world = scenario_world(kb, SIZE, 1)
    engine = Engine(state_dir=tmp_path)
    plan = engine.plan(playbook, world, parameters(world))
    assert plan.selected is not None  # the object, not its JSON, is what the result holds
    assert plan.selection is None
    expected = plan.selected.to_json()
    assert plan.selection_json() == expected
    assert plan.to_json()["selection"] == expected
    # What resume reads back from the journal is that same JSON.
    applied = engine.apply(
        playbook, world, parameters(world), safety=Safety(confirm=lambda text: True)
    )
    journal = Path(str(applied.run_dir)) / "journal.jsonl"
    discovered = [
        json.loads(line)
        for line in journal.read_text(encoding="utf-8").splitlines()
        if '"run.discovered"' in line
    ]
    assert len(discovered) == 1
    made = applied.selection_json()
    assert discovered[0]["selection"] == made
    assert playbook.load_selection(made).to_json() == made


def test_a_result_is_a_plain_frozen_slotted_dataclass(tmp_path: Path) -> None:
    world = scenario_world("kb842101", SIZE, 1)
    plan = Engine(state_dir=tmp_path).plan(get_playbook("kb842101"), world, parameters(world))
    assert dataclasses.is_dataclass(RunResult) and not hasattr(plan, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.state = "done"  # type: ignore[misc]
    again = dataclasses.replace(plan, state="done")
    assert again.state == "done" and again.selected is plan.selected
    assert again.changes is plan.changes  # a copy shares what the run recorded
    assert again.selection_json() == plan.selection_json()


def test_a_selection_given_as_json_is_kept_as_given() -> None:
    result = RunResult("plan", "kb", "done", {}, selection={"users": []})
    assert result.selection_json() == {"users": []} and result.selected is None
    assert result.selection_json() is result.selection
    assert RunResult("plan", "kb", "done", {}).selection_json() is None
    assert result == RunResult("plan", "kb", "done", {}, {"users": []})
    assert result != RunResult("plan", "kb", "done", {}, {"users": [2]})


class Counting(Step[UserTarget, None]):
    name = "counting"
    impact = Impact.READ
    summary = "counts how often its targets are made"

    def observe(self, ctx: Any, targets: Any) -> dict[str, None]:
        return {target.key: None for target in targets}

    def plan(self, target: Any, observation: Any) -> Any:
        raise AssertionError("not called here")

    def apply(self, ctx: Any, pending: Any) -> None:
        raise AssertionError("not called here")


def test_targets_made_by_a_function_are_made_when_asked_for_and_forgotten() -> None:
    made: list[int] = []

    def make() -> Iterable[UserTarget]:
        made.append(1)
        return [UserTarget(UUID(int=n), f"CN=u{n}", f"u{n}") for n in range(3)]

    step = Counting(make)
    assert not made  # nothing made until asked
    first = step.targets
    assert step.targets is first and len(made) == 1  # made once while held
    step.forget_targets()
    again = step.targets
    assert again == first and again is not first and len(made) == 2
    given = Counting(list(first))
    given.forget_targets()  # targets given as they are stay
    assert given.targets == first


@pytest.mark.parametrize("kb", ["kb278447"])
def test_steps_made_lazily_have_the_targets_made_at_once_before(kb: str, tmp_path: Path) -> None:
    playbook = get_playbook(kb)
    world = scenario_world(kb, SIZE, 1)
    plan = Engine(state_dir=tmp_path).plan(playbook, world, parameters(world))
    selection = playbook.load_selection(plan.selection_json())
    steps = playbook.steps(selection)
    keys = [[target.key for target in step.targets] for step in steps]
    assert sum(map(len, keys)) > 4 * SIZE
    for step in steps:
        step.forget_targets()
    assert [[target.key for target in step.targets] for step in playbook.steps(selection)] == keys
    # The engine lets each step's targets go once the step is done.
    held = playbook.steps(selection)
    copy = world.rehearsal()
    copy.attach_run(None)
    events = Events(run_id=None, playbook=kb, mode="plan")
    executor = Executor(
        StepContext(copy, MemoryBackups()),
        events,
        rehearsal=True,
        retry=RetryPolicy(),
        manual_deadline_s=3600.0,
    )
    executor.run(held)
    assert all(step._targets is None for step in held if step._make_targets is not None)


@pytest.mark.parametrize("kb", ["kb278447", "kb842101"])
def test_plan_and_apply_records_are_as_json_what_they_were(kb: str, tmp_path: Path) -> None:
    """The records of a run give the JSON that the plan file holds."""
    playbook = get_playbook(kb)
    world = scenario_world(kb, SIZE, 1)
    engine = Engine(state_dir=tmp_path)
    applied = engine.apply(
        playbook, world, parameters(world), safety=Safety(confirm=lambda text: True)
    )
    assert applied.state == "done" and applied.changes
    plan_file = json.loads((Path(str(applied.run_dir)) / "plan.json").read_text("utf-8"))
    assert plan_file["changes"] == [record.to_json() for record in applied.planned]
    assert all(isinstance(r.label, str) and r.label for r in applied.changes)
    assert any(isinstance(r.before, dict) for r in applied.changes)
    assert all(json.loads(json.dumps(r.to_json())) == r.to_json() for r in applied.changes)


def test_scenario_worlds_share_repeated_strings_and_homes_and_stay_the_same() -> None:
    world = scenario_world("kb278447", SIZE, 1)
    again = scenario_world("kb278447", SIZE, 1)
    assert world_to_json(world) == world_to_json(again)
    entries = [e for e in world.directory.views()[0].entries() if e.get("msExchHomeServerName")]
    by_value: dict[str, set[int]] = {}
    for entry in entries:
        value = entry.attributes["msExchHomeServerName"]
        by_value.setdefault(str(value), set()).add(id(value))
    assert by_value and all(len(ids) == 1 for ids in by_value.values())
    homes = world.exchange._mailbox_homes
    assert len({id(home) for home in homes.values()}) == len(set(homes.values()))
