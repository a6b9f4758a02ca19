"""An applied change equal to its rehearsed one is held as that same record."""

from __future__ import annotations

from dataclasses import replace

from remediate.engine.changes import ChangeRecord, Impact
from remediate.engine.execute import PlannedRecords


def record(step: str, target: str) -> ChangeRecord:
    return ChangeRecord(
        step, target, target, "directory", Impact.REVERSIBLE, "modify", {"items": 1}, {"items": 2}
    )


def copy_of(original: ChangeRecord) -> ChangeRecord:
    return replace(original, before={"items": 1})  # equal, not the same object


def test_applied_records_equal_to_the_planned_ones_are_the_planned_objects() -> None:
    planned = [record("a", str(n)) for n in range(5)]
    records = PlannedRecords(planned)
    assert all(records.same_as(copy_of(p)) is p for p in planned)


def test_a_planned_record_without_an_applied_twin_does_not_stop_the_sharing() -> None:
    planned = [record("a", "1"), record("cleanup", "EXCH02"), record("b", "1"), record("b", "2")]
    records = PlannedRecords(planned)
    applied = [records.same_as(copy_of(p)) for p in (planned[0], planned[2], planned[3])]
    assert applied[0] is planned[0] and applied[1] is planned[2] and applied[2] is planned[3]


def test_an_applied_record_the_plan_does_not_hold_is_kept_as_it_is() -> None:
    planned = [record("a", "1"), record("a", "2")]
    records = PlannedRecords(planned)
    extra = record("z", "9")
    assert records.same_as(extra) is extra
    assert records.same_as(copy_of(planned[0])) is planned[0]
    far = [record("a", str(n)) for n in range(PlannedRecords.LOOKAHEAD + 2)]
    beyond = PlannedRecords(far)
    late = copy_of(far[-1])
    assert beyond.same_as(late) is late  # too far ahead to be the same change
