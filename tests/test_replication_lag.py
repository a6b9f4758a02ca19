"""The domain controller an Exchange server reads AD through lags behind the DC the run writes
to. The playbooks wait for it in virtual time before they let the cleanup agent act; a lag
beyond the wait's deadline fails the run, and resume finishes it once replication caught up."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from kb_support import (
    Doc,
    assert_kb278447_end_state,
    assert_kb842101_end_state,
    expected,
    journal,
    load,
    parameters,
    run_dir,
    scenario,
    snapshot,
)

from remediate import (
    PLAYBOOKS,
    Engine,
    Options,
    Refused,
    RunResult,
    Safety,
    StepFailed,
    get_playbook,
)
from remediate.engine.journal import JournalRecord
from remediate.engine.runner import EXIT_PENDING
from remediate.fakes import FakeWorld
from remediate.steps.replication import WaitForReplication
from remediate.testing import apply_confirmed

LAGGING_DC = "DC2"  # scenarios put every Exchange server on DC2; the run writes to DC1
# The first write each playbook makes through the pinned DC (DC1), which DC2 sees late.
FIRST_WRITE = {"kb842101": "delete-ad-user", "kb278447": "remove-exchange-attributes"}
BEYOND_DEADLINE = WaitForReplication.deadline_s + 2 * 3600
YES = Safety(confirm=lambda text: True)


def lagging_scenario(name: str, version: str, lag_s: float) -> Doc:
    doc = scenario(name, 7, version=version)
    servers = doc["exchange"]["servers"]
    assert {server["dc"] for server in servers} == {LAGGING_DC}
    for dc in doc["directory"]["dcs"]:
        if dc["name"] == LAGGING_DC:
            dc["replication_delay_s"] = lag_s
    return doc


class Timeline:
    """Each journaled event with the world's virtual time when it happened."""

    def __init__(self, world: FakeWorld) -> None:
        self.world = world
        self.seen: list[tuple[JournalRecord, datetime]] = []

    def __call__(self, record: JournalRecord) -> None:
        self.seen.append((record, self.world.clock.now()))

    def first(self, event: str, step: str) -> datetime:
        return next(
            at for record, at in self.seen if record["event"] == event and record["step"] == step
        )


def assert_end_state(name: str, before: Doc, world: FakeWorld, result: RunResult) -> None:
    if name == "kb842101":
        assert_kb842101_end_state(before, world, result, parameters(before), expected(before))
    else:
        assert_kb278447_end_state(before, world, result, expected(before))


# Only where the run writes through DC1: kb278447 on 2007 and later disables mailboxes through
# the Exchange server, i.e. on DC2 itself, which then has nothing to wait for.
CASES = [("kb842101", "2003"), ("kb842101", "2016"), ("kb278447", "2000"), ("kb278447", "2003")]


@pytest.mark.parametrize("lag_s", [900.0, 3 * 3600.0], ids=["15min", "3h"])
@pytest.mark.parametrize(("name", "version"), CASES)
def test_the_cleanup_agent_runs_only_after_the_lagging_dc_has_seen_the_changes(
    state_dir: Path, name: str, version: str, lag_s: float
) -> None:
    world = load(lagging_scenario(name, version, lag_s))
    before = snapshot(world)
    timeline = Timeline(world)
    engine = Engine(state_dir=state_dir, subscribers=(timeline,))
    started = world.clock.now()

    result = apply_confirmed(engine, get_playbook(name), world, parameters(before))

    assert result.state == "done", result.error
    assert world.clock.now() - started >= timedelta(seconds=lag_s)
    wrote = timeline.first("step.applying", FIRST_WRITE[name])
    cleaned = timeline.first("step.applying", "run-cleanup-agent")
    assert cleaned - wrote >= timedelta(seconds=lag_s)
    waits = [
        r
        for r in journal(run_dir(result))
        if r["event"] == "step.waiting" and r["step"] == "wait-for-replication"
    ]
    assert waits
    assert {r["endpoint"] for r in waits} == {f"dc:{LAGGING_DC}"}
    assert [c.target for c in result.changes if c.step == "wait-for-replication"] == [
        f"dc:{LAGGING_DC}"
    ]
    assert_end_state(name, before, world, result)


def test_a_plan_shows_the_wait_for_the_lagging_dc_as_a_step(engine: Engine) -> None:
    world = load(lagging_scenario("kb842101", "2016", 900.0))

    plan = engine.plan(get_playbook("kb842101"), world, parameters(snapshot(world)))

    assert plan.exit_code == EXIT_PENDING
    waits = [c for c in plan.changes if c.step == "wait-for-replication"]
    assert [(c.target, c.action) for c in waits] == [(f"dc:{LAGGING_DC}", "wait")]


def test_replication_slower_than_the_deadline_fails_the_run_naming_the_dc_and_resume_finishes_it(
    state_dir: Path,
) -> None:
    """The DC's link slows down after the plan was approved (the rehearsal saw a normal lag)."""
    world = load(lagging_scenario("kb842101", "2016", 900.0))
    before = snapshot(world)

    def link_slows_down(record: JournalRecord) -> None:
        if record["event"] == "run.approved":
            world.directory.view(LAGGING_DC).delay = BEYOND_DEADLINE

    engine = Engine(state_dir=state_dir, subscribers=(link_slows_down,))
    run_dirs: list[Path] = []

    with pytest.raises(StepFailed) as failed:
        engine.apply(
            get_playbook("kb842101"),
            world,
            parameters(before),
            safety=YES,
            on_run_dir=run_dirs.append,
        ).raise_for_stop()

    assert failed.value.step == "wait-for-replication"
    assert LAGGING_DC in str(failed.value.target)
    [directory] = run_dirs
    events = [record["event"] for record in journal(directory)]
    assert events[-2:] == ["step.failed", "run.finished"]
    assert journal(directory)[-1]["state"] == "failed"

    world.advance(BEYOND_DEADLINE)
    resumed = Engine(state_dir=state_dir).resume(directory.name, world, PLAYBOOKS)

    assert resumed.state == "done", resumed.error
    assert {c.step for c in resumed.changes} >= {"run-cleanup-agent", "purge-mailbox"}
    assert not {c.step for c in resumed.changes} & {"export-mail", "delete-ad-user"}
    assert_kb842101_end_state(before, world, resumed, parameters(before), expected(before))


def test_a_lag_beyond_the_deadline_from_the_start_is_refused_before_any_change(
    state_dir: Path,
) -> None:
    """The rehearsal shows the wait cannot finish in time, so nothing is changed and the
    message says how to wait longer."""
    world = load(lagging_scenario("kb842101", "2016", BEYOND_DEADLINE))
    before = snapshot(world)
    engine = Engine(state_dir=state_dir)

    with pytest.raises(Refused) as refused:
        engine.apply(
            get_playbook("kb842101"), world, parameters(before), safety=YES
        ).raise_for_stop()
    assert LAGGING_DC in str(refused.value)
    assert "--replication-timeout" in str(refused.value)
    assert snapshot(world)["directory"] == before["directory"]


def test_a_longer_replication_timeout_waits_out_a_lag_beyond_the_default(
    state_dir: Path,
) -> None:
    world = load(lagging_scenario("kb842101", "2016", BEYOND_DEADLINE))
    before = snapshot(world)
    engine = Engine(state_dir=state_dir)
    options = Options(replication_timeout_s=BEYOND_DEADLINE + 3600)

    result = engine.apply(
        get_playbook("kb842101"), world, parameters(before), options=options, safety=YES
    )
    assert result.state == "done"
    assert_kb842101_end_state(before, world, result, parameters(before), expected(before))
