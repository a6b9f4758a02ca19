"""Both playbooks end to end on scenario worlds of several sizes and every Exchange version:
plan shows pending changes, apply reaches the KB's end state and does exactly what was planned,
and a second apply changes nothing."""

from __future__ import annotations

import pytest
from kb_support import (
    Repair,
    assert_kb278447_end_state,
    assert_kb842101_end_state,
    assert_mail_reaches_the_original_mailbox,
    assert_reports_ambiguous,
    expected,
    load,
    parameters,
    plan_and_apply,
    scenario,
    snapshot,
)

from remediate import Engine, get_playbook
from remediate.engine.runner import EXIT_DONE, EXIT_PENDING
from remediate.fakes.scenarios import VERSIONS
from remediate.testing import apply_confirmed, change_keys

SIZES = (1, 7, pytest.param(60, marks=pytest.mark.slow))


def repair(engine: Engine, name: str, size: int, version: str) -> Repair:
    """Plan and apply a scenario with the parameters it records; check the run's outcome."""
    doc = scenario(name, size, seed=size, version=version)
    world = load(doc)
    done = plan_and_apply(engine, name, world, parameters(doc))
    assert done.plan.exit_code == EXIT_PENDING, done.plan.error
    assert done.plan.state == "pending"
    assert done.applied.state == "done", done.applied.error
    assert done.applied.exit_code == EXIT_DONE
    assert change_keys(done.applied.changes) == change_keys(done.plan.changes)
    return done


def assert_second_apply_changes_nothing(engine: Engine, done: Repair, name: str) -> None:
    repaired = snapshot(done.world)
    again = apply_confirmed(engine, get_playbook(name), done.world, parameters(done.before))
    assert again.changes == []
    assert again.exit_code == EXIT_DONE
    assert again.state == "done"
    assert snapshot(done.world) == repaired


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("size", SIZES)
def test_kb842101_removes_what_the_cancelled_migration_created_and_nothing_else(
    engine: Engine, size: int, version: str
) -> None:
    done = repair(engine, "kb842101", size, version)

    assert_kb842101_end_state(
        done.before, done.world, done.applied, parameters(done.before), expected(done.before)
    )
    assert_second_apply_changes_nothing(engine, done, "kb842101")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("size", SIZES)
def test_kb278447_reconnects_each_user_to_his_original_mailbox_with_all_his_mail(
    engine: Engine, size: int, version: str
) -> None:
    done = repair(engine, "kb278447", size, version)

    assert_kb278447_end_state(done.before, done.world, done.applied, expected(done.before))
    assert_reports_ambiguous(done.plan.findings, done.before, expected(done.before))
    assert_reports_ambiguous(done.applied.findings, done.before, expected(done.before))
    assert_second_apply_changes_nothing(engine, done, "kb278447")
    assert_mail_reaches_the_original_mailbox(done.world, done.before, expected(done.before))
