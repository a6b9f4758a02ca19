"""A run that crashes after any backend operation is continued by ``resume`` to the very state an
uninterrupted run leaves, with no mail lost and nothing outside its scope touched.

For each playbook and Exchange version, an uninterrupted apply is counted first (the rehearsal
runs on a copy with its own fault counters, so the world's count is discovery plus apply). Then,
for every N from 1 to that count, a fresh world crashes (``SimulatedCrash``, which nothing may
catch) right after its N-th operation took effect, and the run is resumed against the same world
object, as a restarted process would against the same servers.

The 2000/2003 worlds have their stores run the cleanup agent hourly instead of nightly: a manual
cleanup-agent wait is then a dozen polls instead of about 280 identical ones, which keeps every
crash point (a few hundred in all) inside the time budget without losing a kind of crash point.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from run_support import (
    Case,
    Doc,
    apply,
    comparable,
    differences,
    events,
    expected,
    load,
    lost_items,
    mutations,
    only_run,
    outside,
    quiet_events,
    run_dirs,
    scope,
    snapshot,
)

from remediate import PLAYBOOKS, Engine, Refused
from remediate.engine.runner import load_run_state
from remediate.fakes import SimulatedCrash

HOURLY = 3600
CASES = [
    Case("kb842101", "2003", cleanup_interval_s=HOURLY),
    Case("kb842101", "2016"),
    Case("kb278447", "2000", cleanup_interval_s=HOURLY),
    Case("kb278447", "2003", cleanup_interval_s=HOURLY),
    Case("kb278447", "2016"),
]


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A simulated crash drops what the journal had not written yet and keeps what it wrote,
    # with or without fsync; fsync only matters for a power loss (test_journal_and_lock checks
    # it is called). Without it the few hundred runs here take a third of the time.
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    yield from quiet_events()


@dataclass(frozen=True)
class Reference:
    """What an uninterrupted apply did."""

    before: Doc
    after: Doc
    operations: int  # backend operations, failed ones included
    effective: int  # operations that took effect (crash_after counts these)
    mutations: dict[str, int]


def uninterrupted(case: Case, doc: Doc, state_dir: Path) -> Reference:
    world = load(doc)
    before = snapshot(world)
    result = apply(Engine(state_dir=state_dir), case, world, doc)
    assert result.state == "done", result.error
    log = list(world.faults.log)
    # On 2000/2003 the cleanup-agent call answers "do it by hand" without taking effect.
    manual = log.count("exchange.run_cleanup_agent") if case.legacy else 0
    return Reference(before, snapshot(world), len(log), len(log) - manual,
                     dict(mutations(log, case)))


def promised_end_state(case: Case, doc: Doc, after: Doc) -> list[str]:
    """What the scenario says the repair leaves, checked on the uninterrupted run."""
    promised = expected(doc)
    live = {entry["guid"]: entry for entry in after["directory"]["objects"]}
    boxes = {
        box["guid"]: box
        for server in after["exchange"]["servers"]
        for store in server["stores"]
        for box in store["mailboxes"]
    }
    problems = []
    if case.playbook == "kb842101":
        problems += [f"{g} still live" for g in promised["deleted_guids"] if g in live]
        problems += [f"mailbox {g} not purged" for g in promised["purged_mailboxes"] if g in boxes]
    else:
        for entry in promised["affected"]:
            user = live[entry["user"]]["attributes"]
            if user.get("msExchMailboxGuid") != entry["original"]:
                problems.append(f"{entry['user']} not on its original mailbox")
            held = {item["id"] for item in boxes[entry["original"]]["items"]}
            if not set(entry["old_item_ids"]) | set(entry["new_item_ids"]) <= held:
                problems.append(f"original mailbox of {entry['user']} misses items")
    return problems


def check_repaired(
    case: Case, doc: Doc, reference: Reference, after: Doc, run_dir: Path, *, sent: dict[str, int]
) -> list[str]:
    """Why ``after`` (left by a run in ``run_dir`` that sent ``sent`` mutations) is not the
    uninterrupted run's end state; empty when it is."""
    problems = differences(comparable(reference.after), comparable(after))
    lost = lost_items(reference.before, after, run_dir)
    if lost:
        problems.append(f"{len(lost)} mail item(s) lost, e.g. {lost[0]}")
    objects, boxes = scope(doc, case.playbook)
    problems += differences(outside(reference.before, objects, boxes),
                            outside(after, objects, boxes), "outside the scope")
    if sent != reference.mutations:
        problems.append(f"mutations sent {sent}, uninterrupted run sent {reference.mutations}")
    return problems


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_uninterrupted_run_keeps_the_scenarios_promises(case: Case, tmp_path: Path) -> None:
    doc = case.document()
    reference = uninterrupted(case, doc, tmp_path / "state")
    assert promised_end_state(case, doc, reference.after) == []
    run_dir = only_run(tmp_path / "state")
    assert lost_items(reference.before, reference.after, run_dir) == []
    objects, boxes = scope(doc, case.playbook)
    assert outside(reference.after, objects, boxes) == outside(reference.before, objects, boxes)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_crash_after_any_operation_then_resume_reaches_the_uninterrupted_end_state(
    case: Case, tmp_path: Path
) -> None:
    doc = case.document()
    reference = uninterrupted(case, doc, tmp_path / "reference")
    failures: list[str] = []
    refused: list[int] = []
    resumed: list[int] = []
    for n in range(1, reference.operations + 1):
        state_dir = tmp_path / f"crash-{n}"
        engine = Engine(state_dir=state_dir)
        world = load(doc)
        world.faults.crash_after(n)
        try:
            apply(engine, case, world, doc)
        except SimulatedCrash:
            pass
        else:
            # Only possible once N passes the operations that take effect.
            assert n == reference.effective + 1, f"crash_after({n}) did not crash"
            assert comparable(snapshot(world)) == comparable(reference.after)
            break
        crashed_after = world.faults.log[-1]
        run_dir = only_run(state_dir)
        if not load_run_state(run_dir).approved:
            # The crash came before the safety gates: nothing changed, resume refuses, and a
            # fresh apply does the whole repair.
            refused.append(n)
            with pytest.raises(Refused, match="nothing was changed"):
                engine.resume(run_dir.name, world, PLAYBOOKS)
            assert snapshot(world) == reference.before, f"crash {n} before approval changed"
            assert not mutations(world.faults.log, case)
            result = apply(engine, case, world, doc)
            run_dir = state_dir / "runs" / str(result.run_id)
        else:
            resumed.append(n)
            result = engine.resume(run_dir.name, world, PLAYBOOKS)
            assert [r.name for r in run_dirs(state_dir)] == [run_dir.name]
            assert events(run_dir, "run.resumed"), "resume left no run.resumed record"
        problems = [] if result.state == "done" and result.exit_code == 0 else [
            f"ended {result.state} (exit {result.exit_code}): {result.error}"]
        problems += check_repaired(case, doc, reference, snapshot(world), run_dir,
                                   sent=dict(mutations(world.faults.log, case)))
        failures += [f"crash after #{n} ({crashed_after}): {p}" for p in problems]
    else:
        assert reference.effective == reference.operations, "the last crash point never ran"
    assert not failures, "\n".join(failures[:25])
    # Discovery comes first (refused, then a fresh apply); every later point is resumed.
    assert refused == list(range(1, len(refused) + 1)) and refused
    assert resumed == list(range(len(refused) + 1, reference.effective + 1))
