"""One run per real organisation wherever it is started from: the lease object in the directory
(remediate.engine.lease), on the fake directory. The same on a real DC, and between two
processes: tests/test_lease_samba.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from run_support import YES, Case, apply, load, parameters, run_dirs

from remediate import PLAYBOOKS, Engine, RunPaused
from remediate.engine.journal import JournalRecord
from remediate.engine.lease import (
    LEASE_TTL_S,
    STOPPED,
    LeaseLost,
    LeaseRecord,
    lease_dn,
)
from remediate.errors import InputError, LockHeld, PermanentError, Refused
from remediate.fakes import FakeWorld

KB842101 = Case("kb842101", "2016")
KB842101_2003 = Case("kb842101", "2003")
HOUR = 3600.0


pytestmark = pytest.mark.usefixtures("quiet")


def held(world: FakeWorld, container: str) -> LeaseRecord | None:
    return LeaseRecord.from_text(world.directory.lease(lease_dn(container)))


def other_holder(world: FakeWorld, **changes: object) -> LeaseRecord:
    """A lease record of a run on another machine, as it would have written it now."""
    now = world.clock.now()
    fields: dict[str, object] = {
        "run_id": "20261201T100000Z-kb842101-abcdef",
        "holder": "ann@ops-laptop-7",
        "pid": 4242,
        "started": now,
        "renewed": now,
        "state": "running",
    }
    fields.update(changes)
    return LeaseRecord(**fields)  # type: ignore[arg-type]  # each change is the field's own type


def answering(asked: list[str], answer: bool) -> Callable[[str], bool]:
    """An operator asked whether to break a lease: what was asked is kept."""

    def confirm(text: str) -> bool:
        asked.append(text)
        return answer

    return confirm


def test_the_fake_directory_adds_a_lease_once_and_swaps_and_removes_only_its_record() -> None:
    world = load(KB842101.document())
    directory = world.directory
    dn = lease_dn(directory.base_dn)

    assert directory.lease(dn) is None
    assert directory.add_lease(dn, "first")
    assert not directory.add_lease(dn, "second")  # entryAlreadyExists: the first one holds it
    assert directory.lease(dn) == "first"
    assert not directory.swap_lease(dn, "stale", "second")  # a compare-and-swap
    assert directory.swap_lease(dn, "first", "renewed")
    assert not directory.remove_lease(dn, "first")  # no longer that record: left alone
    assert directory.remove_lease(dn, "renewed")
    assert directory.lease(dn) is None
    assert directory.add_lease(dn, "again")  # a removed lease can be taken again


def test_a_lease_in_a_container_that_does_not_exist_is_refused_naming_it() -> None:
    world = load(KB842101.document())
    container = f"CN=No Such,{world.directory.base_dn}"
    with pytest.raises(PermanentError, match=r"noSuchObject \(32\)"):
        world.directory.add_lease(lease_dn(container), "x")
    engine = Engine(state_dir=Path("/nonexistent-state"), lease_container=container)
    with pytest.raises(InputError, match="lease_container") as refused:
        engine.apply(
            KB842101.runbook, world, parameters(KB842101.document()), safety=YES
        ).raise_for_stop()
    assert "CN=No Such" in str(refused.value)


def test_the_lease_name_escapes_the_container_and_refuses_what_is_no_dn() -> None:
    assert lease_dn("OU=Ops\\, North,DC=corp,DC=example") == (
        "CN=remediate-lease,OU=Ops\\, North,DC=corp,DC=example"
    )
    with pytest.raises(InputError, match="lease_container"):
        lease_dn("not a dn")


def test_a_finished_run_took_the_lease_and_released_it(tmp_path: Path) -> None:
    doc = KB842101.document()
    world = load(doc)
    container = world.directory.base_dn
    seen: list[LeaseRecord | None] = []

    def during(record: JournalRecord) -> None:
        if record.get("event") == "step.started":
            seen.append(held(world, container))

    engine = Engine(state_dir=tmp_path, lease_container=container, subscribers=(during,))
    result = apply(engine, KB842101, world, doc)

    assert result.exit_code == 0, result.error
    assert seen and all(r is not None and r.run_id == result.run_id and r.running for r in seen)
    assert held(world, container) is None


def test_a_second_run_is_refused_naming_the_holder_and_makes_no_run_directory(
    tmp_path: Path,
) -> None:
    doc = KB842101.document()
    world = load(doc)
    container = world.directory.base_dn
    holder = other_holder(world)
    assert world.directory.add_lease(lease_dn(container), holder.to_text())
    engine = Engine(state_dir=tmp_path, lease_container=container)

    with pytest.raises(LockHeld) as refused:
        apply(engine, KB842101, world, doc).raise_for_stop()

    message = str(refused.value)
    assert refused.value.exit_code == 3
    assert f"run {holder.run_id}, pid 4242 on ann@ops-laptop-7" in message
    assert "wait for it to finish" in message
    assert run_dirs(tmp_path) == []
    assert held(world, container) == holder  # untouched


def test_an_expired_lease_is_never_taken_silently_and_break_lease_takes_it_after_confirming(
    tmp_path: Path,
) -> None:
    doc = KB842101.document()
    world = load(doc)
    container = world.directory.base_dn
    then = world.clock.now() - timedelta(seconds=LEASE_TTL_S + 60)
    holder = other_holder(world, started=then, renewed=then)
    world.directory.add_lease(lease_dn(container), holder.to_text())

    with pytest.raises(LockHeld, match="stopped renewing it") as refused:
        apply(
            Engine(state_dir=tmp_path, lease_container=container), KB842101, world, doc
        ).raise_for_stop()
    assert "--break-lease" in str(refused.value)
    assert f"remediate resume {holder.run_id}" in str(refused.value)

    asked: list[str] = []
    with pytest.raises(Refused, match="not confirmed"):
        apply(
            Engine(
                state_dir=tmp_path, lease_container=container, break_lease=answering(asked, False)
            ),
            KB842101,
            world,
            doc,
        ).raise_for_stop()
    assert holder.run_id in asked[0] and "ann@ops-laptop-7" in asked[0]
    assert held(world, container) == holder

    result = apply(
        Engine(state_dir=tmp_path, lease_container=container, break_lease=lambda text: True),
        KB842101,
        world,
        doc,
    )
    assert result.exit_code == 0, result.error
    assert any(
        f"took over organisation {world.organisation}'s lease from run {holder.run_id}" in warning
        for warning in result.warnings
    )
    assert held(world, container) is None


def test_break_lease_never_takes_a_live_runs_lease(tmp_path: Path) -> None:
    doc = KB842101.document()
    world = load(doc)
    container = world.directory.base_dn
    holder = other_holder(world)
    world.directory.add_lease(lease_dn(container), holder.to_text())
    asked: list[str] = []
    engine = Engine(
        state_dir=tmp_path, lease_container=container, break_lease=answering(asked, True)
    )

    with pytest.raises(LockHeld, match="is alive"):
        apply(engine, KB842101, world, doc).raise_for_stop()
    assert asked == []  # not even asked
    assert held(world, container) == holder


def test_a_paused_run_keeps_the_lease_and_its_resume_takes_it_back(tmp_path: Path) -> None:
    doc = KB842101_2003.document()
    world = load(doc)
    container = world.directory.base_dn
    engine = Engine(state_dir=tmp_path, manual_deadline_s=HOUR, lease_container=container)
    with pytest.raises(RunPaused) as paused:
        apply(engine, KB842101_2003, world, doc).raise_for_stop()
    run_id = paused.value.run_id

    kept = held(world, container)
    assert kept is not None and (kept.run_id, kept.state) == (run_id, STOPPED)
    with pytest.raises(LockHeld) as refused:  # nobody else starts on the half-repaired users
        apply(
            Engine(state_dir=tmp_path / "elsewhere", lease_container=container),
            KB842101_2003,
            world,
            doc,
        )
    assert f"remediate resume {run_id}" in str(refused.value)
    assert "waiting for its resume" in str(refused.value)

    world.advance(2 * 86400)  # the stores' nightly cleanup pass runs
    result = engine.resume(run_id, world, PLAYBOOKS)

    assert (result.state, result.exit_code) == ("done", 0)
    assert held(world, container) is None


def test_a_run_refused_before_any_change_releases_the_lease(tmp_path: Path) -> None:
    doc = KB842101.document()
    world = load(doc)
    container = world.directory.base_dn
    seen: list[LeaseRecord | None] = []

    def planned(record: JournalRecord) -> None:
        if record.get("event") == "run.planned":
            seen.append(held(world, container))

    engine = Engine(state_dir=tmp_path, lease_container=container, subscribers=(planned,))
    with pytest.raises(Refused, match="not confirmed"):
        # no confirmation: refused
        engine.apply(KB842101.runbook, world, parameters(doc)).raise_for_stop()
    assert len(seen) == 1 and seen[0] is not None and seen[0].running  # held while planning
    assert held(world, container) is None


def test_a_long_run_renews_its_lease_and_stops_before_its_next_step_once_it_was_taken(
    tmp_path: Path,
) -> None:
    doc = KB842101.document()
    world = load(doc)
    container = world.directory.base_dn
    dn = lease_dn(container)
    renewals: list[str] = []
    stolen = other_holder(world).to_text()

    def meanwhile(record: JournalRecord) -> None:
        if record.get("event") == "step.completed":
            renewals.append(world.directory.lease(dn) or "")
            world.advance(120)  # time passes: the next event renews the lease
            if record.get("step") == "delete-ad-user":  # another run breaks it
                world.directory.swap_lease(dn, world.directory.lease(dn) or "", stolen)

    engine = Engine(state_dir=tmp_path, lease_container=container, subscribers=(meanwhile,))
    with pytest.raises(LeaseLost, match="taken over by another run"):
        apply(engine, KB842101, world, doc).raise_for_stop()

    assert len(set(renewals)) == len(renewals) >= 2  # a new record each time: renewed
    assert world.directory.lease(dn) == stolen  # the run left the new holder's lease alone
