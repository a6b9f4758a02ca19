"""Helpers for people who write playbooks (and for our own tests).

>>> result = assert_idempotent(engine, get_playbook("kb842101"), world, params)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from remediate.engine.changes import ChangeRecord, JsonValue
from remediate.engine.playbook import Playbook
from remediate.engine.runner import Engine, RunResult, Safety
from remediate.ports import World

ChangeKey = tuple[str, str, str, str, str]


def change_keys(changes: Sequence[ChangeRecord]) -> list[ChangeKey]:
    """What must be equal between a plan and its apply: step, target, action, before, after."""

    def text(value: JsonValue) -> str:
        return json.dumps(value, sort_keys=True)

    return [(c.step, c.target, c.action, text(c.before), text(c.after)) for c in changes]


def apply_confirmed(
    engine: Engine, playbook: Playbook[Any, Any], world: World, parameters: Mapping[str, str]
) -> RunResult:
    """Apply as if the operator passed --yes."""
    return engine.apply(playbook, world, parameters, safety=Safety(confirm=lambda text: True))


def assert_plan_matches_apply(
    engine: Engine, playbook: Playbook[Any, Any], world: World, parameters: Mapping[str, str]
) -> RunResult:
    """Plan, then apply: the applied change list must equal the planned one. A run that
    stops (refused, failed, paused) raises what stopped it."""
    planned = engine.plan(playbook, world, parameters)
    applied = apply_confirmed(engine, playbook, world, parameters).raise_for_stop()
    assert change_keys(planned.changes) == change_keys(applied.changes), (
        f"plan and apply differ:\nplanned {len(planned.changes)}, applied {len(applied.changes)}"
    )
    return applied


def assert_idempotent(
    engine: Engine, playbook: Playbook[Any, Any], world: World, parameters: Mapping[str, str]
) -> RunResult:
    """Apply twice: the second apply must change nothing. Returns the first result. A run
    that stops (refused, failed, paused) raises what stopped it."""
    first = apply_confirmed(engine, playbook, world, parameters).raise_for_stop()
    second = apply_confirmed(engine, playbook, world, parameters).raise_for_stop()
    assert not second.changes, f"second apply changed {change_keys(second.changes)[:5]}"
    return first
