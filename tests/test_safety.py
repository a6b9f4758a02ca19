"""Safety gates through the engine: protected objects, the deletion budget, confirmation."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from remediate import Engine, Options, Refused, Safety, get_playbook
from remediate.fakes import FakeWorld, world_from_json, world_to_json
from remediate.fakes.scenarios import kb842101

PLAYBOOK = get_playbook("kb842101")


def broken_world(protect_first_selected: bool = False) -> tuple[FakeWorld, dict[str, str], UUID]:
    data: dict[str, Any] = kb842101(6, 11)
    scenario = data["scenario"]
    deleted = [UUID(guid) for guid in scenario["expected"]["deleted_guids"]]
    victim = deleted[0]
    if protect_first_selected:
        for obj in data["directory"]["objects"]:
            if UUID(obj["guid"]) == victim:
                obj["protected"] = True
    return world_from_json(data), dict(scenario["parameters"]), victim


def test_a_protected_selected_object_makes_the_plan_refuse_and_names_it(engine: Engine) -> None:
    world, params, _ = broken_world(protect_first_selected=True)
    result = engine.plan(PLAYBOOK, world, params)
    assert result.exit_code == 3
    assert result.error is not None
    assert "protected from accidental deletion" in result.error


def test_a_protected_object_refuses_the_apply_before_any_change(engine: Engine) -> None:
    world, params, _ = broken_world(protect_first_selected=True)
    before = world_to_json(world)
    with pytest.raises(Refused) as refused:
        engine.apply(
            PLAYBOOK, world, params, safety=Safety(confirm=lambda text: True)
        ).raise_for_stop()
    assert refused.value.exit_code == 3
    assert "--allow-protected" in str(refused.value)
    assert world_to_json(world)["directory"] == before["directory"]
    assert world_to_json(world)["exchange"] == before["exchange"]


def test_allow_protected_removes_the_protection_and_deletes(engine: Engine) -> None:
    world, params, victim = broken_world(protect_first_selected=True)
    result = engine.apply(
        PLAYBOOK,
        world,
        params,
        options=Options(allow_protected=True),
        safety=Safety(confirm=lambda text: True),
    )
    assert result.state == "done"
    for dc in world.directory.domain_controllers():
        assert victim not in world.directory.read([victim], dc)


def test_a_plan_over_the_deletion_budget_is_refused_and_nothing_changes(engine: Engine) -> None:
    world, params, _ = broken_world()
    before = world_to_json(world)
    with pytest.raises(Refused) as refused:
        engine.apply(
            PLAYBOOK, world, params, safety=Safety(max_deletions=2, confirm=lambda text: True)
        ).raise_for_stop()
    assert "budget of 2" in str(refused.value)
    after = world_to_json(world)
    assert (after["directory"], after["exchange"]) == (before["directory"], before["exchange"])


def test_without_confirmation_destructive_changes_are_refused(engine: Engine) -> None:
    world, params, _ = broken_world()
    before = world_to_json(world)
    with pytest.raises(Refused) as refused:
        engine.apply(PLAYBOOK, world, params).raise_for_stop()
    assert "delete-ad-user (destructive)" in str(refused.value)
    after = world_to_json(world)
    assert (after["directory"], after["exchange"]) == (before["directory"], before["exchange"])


def test_declining_the_confirmation_changes_nothing_and_the_prompt_names_counts(
    engine: Engine,
) -> None:
    world, params, _ = broken_world()
    before = world_to_json(world)
    asked: list[str] = []

    def decline(text: str) -> bool:
        asked.append(text)
        return False

    with pytest.raises(Refused):
        engine.apply(PLAYBOOK, world, params, safety=Safety(confirm=decline)).raise_for_stop()
    assert len(asked) == 1 and "purge-mailbox (destructive)" in asked[0]
    after = world_to_json(world)
    assert (after["directory"], after["exchange"]) == (before["directory"], before["exchange"])
