"""Every way a run ends is a returned result, not an exception: done, refused, failed, paused and
interrupted each carry their state, exit code and message, and the changes made before the end,
exactly those the journal records as applied. Exceptions are left to bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from run_support import YES, Case, apply, events, load, only_run, parameters

from remediate import Engine
from remediate.engine.changes import JsonValue
from remediate.engine.journal import JournalRecord
from remediate.engine.result import RunResult
from remediate.engine.runner import Safety
from remediate.engine.stopping import Interrupted
from remediate.errors import InputError, PermanentError, Refused, RunPaused

pytestmark = pytest.mark.usefixtures("quiet")
KB842101, KB842101_2003 = Case("kb842101", "2016"), Case("kb842101", "2003")


def applied_in_journal(run_dir: Path) -> list[tuple[str, str, str]]:
    return [
        (str(r["step"]), str(r["target"]), str(r["action"]))
        for r in events(run_dir, "step.applied")
    ]


def in_result(result: RunResult) -> list[tuple[str, str, str]]:
    return [(record.step, record.target, record.action) for record in result.changes]


def test_a_refused_run_is_returned_with_its_id_and_nothing_changed(state_dir: Path) -> None:
    doc = KB842101.document()
    result = Engine(state_dir=state_dir).apply(
        KB842101.runbook, load(doc), parameters(doc), safety=Safety()
    )
    assert (result.state, result.exit_code) == ("refused", 3)
    assert result.run_id == only_run(state_dir).name and not result.approved
    assert result.error is not None and "not confirmed" in result.error
    assert isinstance(result.stop, Refused) and result.changes == []
    assert result.selection_summary  # discovered before the gates refused it


def test_a_failed_run_carries_exactly_the_changes_the_journal_records(state_dir: Path) -> None:
    doc = KB842101.document()
    world = load(doc)
    world.faults.fail("exchange.purge_mailboxes", "permanent")
    result = apply(Engine(state_dir=state_dir), KB842101, world, doc)
    assert (result.state, result.exit_code) == ("failed", 1) and result.approved
    assert isinstance(result.stop, PermanentError) and result.error == str(result.stop)
    made = in_result(result)
    assert made and made == applied_in_journal(only_run(state_dir))


def test_a_paused_run_says_what_the_operator_must_do(state_dir: Path) -> None:
    doc = KB842101_2003.document()
    engine = Engine(state_dir=state_dir, manual_deadline_s=3600.0)  # before the nightly pass
    result = apply(engine, KB842101_2003, load(doc), doc)
    assert (result.state, result.exit_code) == ("paused", 2) and result.approved
    assert isinstance(result.stop, RunPaused)
    assert result.stop.instructions in result.manual_actions
    assert in_result(result) == applied_in_journal(only_run(state_dir))


def test_an_interrupted_run_is_returned_with_the_changes_made_before(state_dir: Path) -> None:
    doc = KB842101.document()
    seen: list[JsonValue] = []

    def stop_at_the_third_step(record: JournalRecord) -> None:
        if record.get("event") == "step.started" and record.get("mode") == "apply":
            seen.append(record.get("step"))
            if len(seen) == 3:
                raise Interrupted("SIGTERM")

    engine = Engine(state_dir=state_dir, subscribers=(stop_at_the_third_step,))
    result = apply(engine, KB842101, load(doc), doc)
    assert (result.state, result.exit_code) == ("interrupted", 1)
    assert result.error == "interrupted (SIGTERM)"
    made = in_result(result)
    assert made and made == applied_in_journal(only_run(state_dir))
    assert [r["state"] for r in events(only_run(state_dir), "run.finished")] == ["interrupted"]


def test_a_done_run_has_no_stop_and_raise_for_stop_returns_it(state_dir: Path) -> None:
    doc = KB842101.document()
    result = apply(Engine(state_dir=state_dir), KB842101, load(doc), doc)
    assert (result.state, result.exit_code, result.stop, result.error) == ("done", 0, None, None)
    assert result.raise_for_stop() is result


def test_a_plan_whose_discovery_fails_returns_a_failed_result(state_dir: Path) -> None:
    doc = KB842101.document()
    world = load(doc)
    world.faults.fail("directory.find_users", "permanent")
    result = Engine(state_dir=state_dir).plan(KB842101.runbook, world, parameters(doc))
    assert (result.state, result.exit_code, result.run_id) == ("failed", 1, None)
    assert isinstance(result.stop, PermanentError)


def test_bad_input_is_still_raised(state_dir: Path) -> None:
    doc = KB842101.document()
    with pytest.raises(InputError):
        Engine(state_dir=state_dir).apply(KB842101.runbook, load(doc), {"no_such": "x"}, safety=YES)


def test_what_stopped_a_run_keeps_none_of_its_frames(state_dir: Path) -> None:
    """A result outlives its run: its exception must not hold the run's frames (and with them
    the world's copies and every record) through a traceback."""
    doc = KB842101.document()
    world = load(doc)
    world.faults.fail("exchange.purge_mailboxes", "permanent")
    result = apply(Engine(state_dir=state_dir), KB842101, world, doc)
    chain: list[BaseException] = []
    error: BaseException | None = result.stop
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert chain and all(link.__traceback__ is None for link in chain)
