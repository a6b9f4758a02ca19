"""A manual step that outlasts the operator's patience: on Exchange 2003 the cleanup agent has no
API, so the run tells the operator what to click in Exchange System Manager and waits. With a
wait shorter than the time to the stores' nightly cleanup pass, the run pauses (exit code 2) in
a resumable state; once the pass has run, ``resume`` finishes it."""

from __future__ import annotations

from pathlib import Path

import pytest
from run_support import (
    Case,
    Doc,
    all_mailboxes,
    apply,
    comparable,
    events,
    load,
    only_run,
    snapshot,
)

from remediate import PLAYBOOKS, Engine, RunPaused
from remediate.engine.runner import load_run_state
from remediate.errors import Refused
from remediate.fakes import world_from_json, world_to_json

KB842101_2003 = Case("kb842101", "2003")
HOUR = 3600.0
NIGHTLY = 86400  # the scenario stores' cleanup schedule (the default)


pytestmark = pytest.mark.usefixtures("quiet")


def test_a_manual_step_that_outlasts_the_wait_pauses_and_resume_finishes_after_the_pass(
    state_dir: Path, tmp_path: Path
) -> None:
    doc = KB842101_2003.document()
    reference = load(doc)
    apply(Engine(state_dir=tmp_path / "reference"), KB842101_2003, reference, doc)
    world = load(doc)
    started = world.clock.now().timestamp()
    next_pass = (started // NIGHTLY + 1) * NIGHTLY
    assert next_pass - started > 3 * HOUR, "the scenario's clock leaves no room for a pause"
    engine = Engine(state_dir=state_dir, manual_deadline_s=HOUR)

    with pytest.raises(RunPaused) as raised:
        apply(engine, KB842101_2003, world, doc).raise_for_stop()

    paused = raised.value
    run_dir = only_run(state_dir)
    assert paused.exit_code == 2
    assert paused.run_id == run_dir.name and paused.step == "run-cleanup-agent"
    for words in (
        "On EXCH01",
        "Exchange System Manager",
        "First Storage Group",
        "Mailbox Store (EXCH01)",
        "Run Cleanup Agent",
    ):
        assert words in paused.instructions
    assert f"remediate resume {run_dir.name}" in str(paused)
    state = load_run_state(run_dir)
    assert state.approved and state.state == "paused"
    assert state.completed == ("export-mail", "delete-ad-user", "wait-for-replication")
    assert [r["instructions"] for r in events(run_dir, "step.manual")] == [paused.instructions]
    # Paused in a consistent state: the users are gone, their mailboxes not yet disconnected.
    promised = doc["scenario"]["expected"]
    live = {entry["guid"] for entry in snapshot(world)["directory"]["objects"]}
    assert not live & set(promised["deleted_guids"])
    boxes = {box["guid"]: box for box in all_mailboxes(snapshot(world))}
    assert all(boxes[guid]["disconnected_at"] is None for guid in promised["purged_mailboxes"])
    assert world.clock.now().timestamp() < next_pass

    world.advance(next_pass - world.clock.now().timestamp() + 1)  # the nightly pass runs
    result = engine.resume(run_dir.name, world, PLAYBOOKS)

    assert (result.state, result.exit_code) == ("done", 0)
    assert comparable(snapshot(world)) == comparable(snapshot(reference))
    assert load_run_state(run_dir).state == "done"


def test_resume_refuses_a_directory_that_pins_another_dc_for_writes(
    state_dir: Path, tmp_path: Path
) -> None:
    doc = KB842101_2003.document()
    world = load(doc)
    engine = Engine(state_dir=state_dir, manual_deadline_s=HOUR)
    with pytest.raises(RunPaused):
        apply(engine, KB842101_2003, world, doc).raise_for_stop()
    run_dir = only_run(state_dir)
    assert load_run_state(run_dir).writable_dc == "DC1"
    moved: Doc = world_to_json(world)
    moved["directory"]["writable_dc"] = "DC2"

    with pytest.raises(Refused, match="wrote to DC1, but the directory now pins DC2") as refused:
        engine.resume(run_dir.name, world_from_json(moved), PLAYBOOKS).raise_for_stop()

    assert 'writable_dc = "DC1"' in (refused.value.hint or "")
    assert load_run_state(run_dir).state == "paused"  # the journal is left as it was
