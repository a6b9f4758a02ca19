"""A change record is a plain frozen, slotted dataclass: what a library user builds, reads,
compares, hashes and copies with ``dataclasses.replace``, with nothing held on its behalf."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from kb_support import scenario_parameters

from remediate.engine.changes import ChangeRecord, Impact, JsonValue
from remediate.engine.runner import Engine
from remediate.fakes.scenarios import scenario_world
from remediate.playbooks import get_playbook

FIELDS = ["step", "target", "label", "endpoint", "impact", "action", "before", "after", "deletes"]


def record(before: JsonValue, after: JsonValue, label: str = "CN=x") -> ChangeRecord:
    return ChangeRecord(
        "import-mail",
        "import:EXCH01/a->b",
        label,
        "exchange:EXCH01",
        Impact.REVERSIBLE,
        "import",
        before,
        after,
    )


def test_a_record_is_a_frozen_slotted_dataclass_with_its_fields_in_order() -> None:
    flat = record({"items": 3}, {"items": 5, "imported": 2})
    assert dataclasses.is_dataclass(flat)
    assert [f.name for f in dataclasses.fields(flat)] == FIELDS
    assert not hasattr(flat, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        flat.step = "other"  # type: ignore[misc]
    assert ChangeRecord(**{f.name: getattr(flat, f.name) for f in dataclasses.fields(flat)}) == flat


def test_dataclasses_replace_makes_a_changed_copy() -> None:
    flat = record({"items": 3}, {"items": 5, "imported": 2})
    changed = dataclasses.replace(flat, before={"items": 4}, deletes=1)
    assert changed.before == {"items": 4} and changed.deletes == 1
    assert changed.after == flat.after and changed.label == flat.label
    assert flat.before == {"items": 3} and flat.deletes == 0
    assert dataclasses.replace(flat, before={"items": 3}) == flat


def test_records_compare_by_every_field_and_hash_by_what_names_the_change() -> None:
    flat = record({"items": 3}, {"items": 5, "imported": 2})
    assert record({"items": 3}, {"items": 5, "imported": 2}) == flat
    assert hash(record({"items": 3}, {"items": 5, "imported": 2})) == hash(flat)
    assert record({"items": 3}, {"imported": 2, "items": 5}) == flat  # as dicts compare
    assert record({"items": 4}, {"items": 5, "imported": 2}) != flat
    assert record({"items": 3}, {"items": 5}) != flat
    assert record({"items": 3}, {"items": 5, "imported": 2}, "CN=y") != flat
    assert len({flat, record({"items": 3}, {"items": 5, "imported": 2})}) == 1
    assert flat.to_json() == {
        "step": "import-mail",
        "target": "import:EXCH01/a->b",
        "label": "CN=x",
        "endpoint": "exchange:EXCH01",
        "impact": "reversible",
        "action": "import",
        "before": {"items": 3},
        "after": {"items": 5, "imported": 2},
    }


def test_a_runs_records_hold_their_labels_as_text(tmp_path: Path) -> None:
    """The engine makes plain records: each label is the target's text, taken when the change
    was recorded, never the target itself."""
    playbook = get_playbook("kb278447")
    world = scenario_world("kb278447", 6, 1)
    parameters = scenario_parameters(world)
    plan = Engine(state_dir=tmp_path).plan(playbook, world, parameters)
    assert plan.changes
    for made in plan.changes:
        fields = dataclasses.asdict(made)
        assert type(fields["label"]) is str and fields["label"] == made.to_json()["label"]
        assert {k: v for k, v in fields.items() if k != "deletes"} == made.to_json()
