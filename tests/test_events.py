"""Events: plan and apply emit the same structured events (one schema: run id, playbook, mode,
step, target), and the run's journal holds the apply's events as valid JSON lines."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import pytest
import structlog
from kb_support import Doc, journal, load, parameters, run_dir, scenario
from structlog.testing import capture_logs
from structlog.typing import EventDict

from remediate import Engine, PermanentError, get_playbook
from remediate.fakes import FakeWorld
from remediate.testing import apply_confirmed

SCHEMA = {"event", "run_id", "playbook", "mode", "step", "target"}
PER_TARGET = {"step.planned": "step.applied", "step.applied": "step.planned"}


@pytest.fixture
def logs() -> Iterator[list[EventDict]]:
    """Every event structlog sees, whatever level or renderer another test configured."""
    saved = structlog.get_config()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    try:
        with capture_logs() as captured:
            yield captured
    finally:
        structlog.configure(**saved)


@pytest.fixture
def doc() -> Doc:
    return scenario("kb842101", 3, version="2016")


@pytest.fixture
def world(doc: Doc) -> FakeWorld:
    return load(doc)


def names(entries: list[EventDict]) -> list[str]:
    return [str(entry["event"]) for entry in entries]


def per_target(entries: list[EventDict], event: str) -> list[tuple[Any, ...]]:
    return [
        (e["step"], e["target"], e["action"], e["before"], e["after"])
        for e in entries
        if e["event"] == event
    ]


def assert_one_schema(entries: Sequence[Mapping[str, Any]], mode: str, run_id: str | None) -> None:
    for entry in entries:
        assert set(entry) >= SCHEMA, f"{entry['event']} lacks {SCHEMA - set(entry)}"
        assert entry["mode"] == mode
        assert entry["run_id"] == run_id
        assert entry["playbook"] == "kb842101"
        if entry["event"].startswith("step."):
            assert entry["step"], f"{entry['event']} names no step"
        if entry["event"] in PER_TARGET:
            assert entry["target"], f"{entry['event']} names no target"


def test_plan_emits_run_and_step_events_with_the_common_schema(
    engine: Engine, world: FakeWorld, doc: Doc, logs: list[EventDict]
) -> None:
    plan = engine.plan(get_playbook("kb842101"), world, parameters(doc))

    seen = names(logs)
    assert seen[0] == "run.started"
    assert seen[-1] == "run.finished"
    assert {"step.planned", "step.verified"} <= set(seen)
    assert "step.applied" not in seen
    assert_one_schema(logs, "plan", None)
    assert logs[-1]["state"] == plan.state == "pending"
    planned = [(c.step, c.target, c.action, c.before, c.after) for c in plan.changes]
    assert per_target(logs, "step.planned") == planned


def test_apply_emits_the_same_schema_as_plan_and_the_changes_it_planned(
    engine: Engine, world: FakeWorld, doc: Doc, logs: list[EventDict]
) -> None:
    engine.plan(get_playbook("kb842101"), world, parameters(doc))
    planning = list(logs)
    logs.clear()

    result = apply_confirmed(engine, get_playbook("kb842101"), world, parameters(doc))

    applying = [entry for entry in logs if entry["mode"] == "apply"]
    seen = names(applying)
    assert seen[0] == "run.started"
    assert seen[-1] == "run.finished"
    assert applying[-1]["state"] == result.state == "done"
    assert {"step.applied", "step.verified"} <= set(seen)
    assert "step.planned" not in seen
    assert_one_schema(applying, "apply", result.run_id)
    assert per_target(applying, "step.applied") == per_target(planning, "step.planned")
    planned_fields = {frozenset(e) for e in planning if e["event"] == "step.planned"}
    applied_fields = {frozenset(e) for e in applying if e["event"] == "step.applied"}
    assert len(planned_fields) == 1
    assert planned_fields == applied_fields
    # apply rehearses first: those events carry the run id too, in plan mode
    rehearsing = [entry for entry in logs if entry["mode"] == "plan"]
    assert rehearsing
    assert_one_schema(rehearsing, "plan", result.run_id)


def test_the_journal_holds_the_apply_events_as_json_lines_with_the_same_schema(
    engine: Engine, world: FakeWorld, doc: Doc, logs: list[EventDict]
) -> None:
    result = apply_confirmed(engine, get_playbook("kb842101"), world, parameters(doc))

    records = journal(run_dir(result))
    assert run_dir(result).name == result.run_id
    for record in records:
        assert SCHEMA | {"ts"} <= set(record)
        assert datetime.fromisoformat(record["ts"]).utcoffset() is not None
    applying = [entry for entry in logs if entry["mode"] == "apply"]
    as_logged = [{k: v for k, v in r.items() if k != "ts"} for r in records]
    assert as_logged == [{k: v for k, v in e.items() if k != "log_level"} for e in applying]
    assert_one_schema(records, "apply", result.run_id)


def test_retries_and_failures_are_events_with_the_common_schema(
    engine: Engine, world: FakeWorld, doc: Doc, logs: list[EventDict]
) -> None:
    world.faults.fail("exchange.export_mail", "transient")
    world.faults.fail("exchange.purge_mailboxes", "permanent")

    with pytest.raises(PermanentError):
        apply_confirmed(engine, get_playbook("kb842101"), world, parameters(doc)).raise_for_stop()

    applying = [entry for entry in logs if entry["mode"] == "apply"]
    [retried] = [e for e in applying if e["event"] == "step.retried"]
    [failed] = [e for e in applying if e["event"] == "step.failed"]
    assert retried["step"] == "export-mail"
    assert failed["step"] == "purge-mailbox"
    assert "EXCH01" in failed["target"]
    assert applying[-1]["event"] == "run.finished"
    assert applying[-1]["state"] == "failed"
    [directory] = (engine.store.runs_dir).iterdir()
    records = journal(directory)
    assert [r["event"] for r in records] == names(applying)
    assert_one_schema(records, "apply", directory.name)
