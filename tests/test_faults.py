"""Transient and permanent faults on every backend operation the playbooks use.

A transient fault on any operation, "before" it does anything or "after" it took effect (the
response was lost), is retried: the run reaches the same end state as a run without faults, and
the journal shows ``step.retried``. A mutation whose response was lost is not sent again: the
engine observes first and sees it took effect. A permanent fault stops the run at once with an
error naming the endpoint, operation and target; once the cause is gone, ``resume`` finishes it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from run_support import (
    MANUAL_ON_LEGACY,
    MUTATING,
    UNOBSERVABLE,
    Case,
    Doc,
    apply,
    comparable,
    events,
    first_index,
    load,
    mutations,
    only_run,
    quiet_events,
    snapshot,
)

from remediate import PLAYBOOKS, Engine, PermanentError
from remediate.engine.journal import JournalRecord
from remediate.fakes import FakeDirectory, FakeExchange, FakeWorld
from remediate.fakes.faults import FaultWhen


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Durability is test_journal_and_lock's business; fsync would only make these hundreds of
    # runs slow, and no fault here is a power loss.
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    yield from quiet_events()


KB842101_2016 = Case("kb842101", "2016", global_catalog="GC9")
KB278447_2003 = Case("kb278447", "2003")
KB278447_2016 = Case("kb278447", "2016")

DISCOVERY_KB842101 = {
    "directory.lookup",
    "directory.find_users",
    "directory.writable_dc",
    "directory.descendants",
    "directory.domain_controllers",
    "exchange.servers",
    "exchange.mailboxes",
    "exchange.stores",
}
DISCOVERY_KB278447 = {
    "directory.find_users",
    "directory.domain_controllers",
    "directory.writable_dc",
    "exchange.servers",
    "exchange.stores",
    "exchange.mailboxes",
    "exchange.service_states",
    "exchange.mail_export_refusal",
    "exchange.running_dependents",
}
APPLY_READS = {
    "directory.writable_dc",
    "directory.read",
    "directory.descendants",
    "exchange.mailboxes",
    "exchange.exports",
    "exchange.mail_export_refusal",
    "exchange.export_location",
}
# The operations each world's run uses: (before its safety gates, after them).
USES: dict[Case, tuple[set[str], set[str]]] = {
    KB842101_2016: (
        DISCOVERY_KB842101,
        APPLY_READS
        | {
            "directory.read_catalog",
            "directory.delete",
            "exchange.export_mail",
            "exchange.run_cleanup_agent",
            "exchange.purge_mailboxes",
        },
    ),
    KB278447_2003: (
        DISCOVERY_KB278447,
        APPLY_READS
        | {
            "exchange.service_states",
            "exchange.set_services",
            "exchange.export_mail",
            "directory.modify",
            "exchange.run_cleanup_agent",
            "exchange.reconnect_mailboxes",
            "exchange.update_recipients",
            "exchange.import_mail",
            "directory.forest_namesakes",
        },
    ),
    KB278447_2016: (
        DISCOVERY_KB278447,
        APPLY_READS
        | {
            "exchange.service_states",
            "exchange.set_services",
            "exchange.export_mail",
            "exchange.disable_mailboxes",
            "exchange.run_cleanup_agent",
            "exchange.reconnect_mailboxes",
            "exchange.update_recipients",
            "exchange.import_mail",
            "exchange.reconnect_problems",
            "directory.modify",
        },
    ),
}


@dataclass(frozen=True)
class Fault:
    case: Case
    operation: str
    when: FaultWhen  # "before": nothing happened; "after": it happened, the response was lost
    armed: str  # "from the start" (its first call), or "after approval" (its first in apply)

    def __str__(self) -> str:
        return f"{self.case.id}-{self.operation}-{self.when}-{self.armed.replace(' ', '-')}"


def transient_faults() -> list[Fault]:
    faults = []
    for case, (discovery, applying) in USES.items():
        for armed, operations in (
            ("from the start", discovery | applying),
            ("after approval", applying),
        ):
            for operation in sorted(operations):
                whens: tuple[FaultWhen, ...] = ("before", "after")
                for when in whens:
                    # On 2000/2003 the cleanup-agent call only answers "do it by hand": it takes
                    # no effect, so there is no response to lose.
                    manual = case.legacy and operation in MANUAL_ON_LEGACY
                    if manual and when == "after":
                        continue
                    faults.append(Fault(case, operation, when, armed))
    return faults


@dataclass(frozen=True)
class Run:
    world: FakeWorld
    log: list[str]
    approved_at: int  # operations done when the run passed its safety gates
    end: Doc
    run_dir: Path


def run(case: Case, doc: Doc, state_dir: Path, fault: Fault | None = None) -> Run:
    world = load(doc)
    approved_at: list[int] = []

    def on_event(record: JournalRecord) -> None:
        if record["event"] == "run.approved":
            approved_at.append(world.faults.count)
            if fault is not None and fault.armed == "after approval":
                world.faults.fail(fault.operation, "transient", when=fault.when)

    if fault is not None and fault.armed == "from the start":
        world.faults.fail(fault.operation, "transient", when=fault.when)
    engine = Engine(state_dir=state_dir, subscribers=(on_event,))
    result = apply(engine, case, world, doc)
    assert result.state == "done" and result.exit_code == 0, result.error
    return Run(world, list(world.faults.log), approved_at[0], snapshot(world), only_run(state_dir))


_references: dict[Case, Run] = {}


def reference(case: Case, doc: Doc, tmp_path: Path) -> Run:
    if case not in _references:
        _references[case] = run(case, doc, tmp_path / "reference")
    return _references[case]


def test_the_fault_cases_cover_every_operation_the_playbooks_use(tmp_path: Path) -> None:
    for case, (discovery, applying) in USES.items():
        ref = reference(case, case.document(), tmp_path / case.id)
        assert set(ref.log[: ref.approved_at]) == discovery, case.id
        assert set(ref.log[ref.approved_at :]) == applying, case.id
    used = {op for discovery, applying in USES.values() for op in discovery | applying}
    every = {f"directory.{op}" for op in FakeDirectory.OPERATIONS}
    every |= {f"exchange.{op}" for op in FakeExchange.OPERATIONS}
    # unprotect: only with --allow-protected (tests/test_safety.py); replication_delays: only
    # by snapshots (tests/test_snapshot.py).
    assert used == every - {"directory.unprotect", "directory.replication_delays"}


@pytest.mark.parametrize("fault", transient_faults(), ids=str)
def test_transient_fault_is_retried_and_the_run_reaches_the_same_end_state(
    fault: Fault, tmp_path: Path
) -> None:
    case, operation = fault.case, fault.operation
    doc = case.document()
    ref = reference(case, doc, tmp_path)
    faulty = run(case, doc, tmp_path / "state", fault)

    assert comparable(faulty.end) == comparable(ref.end)
    retried = events(faulty.run_dir, "step.retried")
    assert any(operation in str(record["error"]) for record in retried), retried
    start = faulty.approved_at if fault.armed == "after approval" else 0
    hit = first_index(faulty.log, operation, start)
    if operation not in MUTATING:
        return
    expected_sent = dict(mutations(ref.log, case))
    if fault.when == "before" and operation in expected_sent:
        expected_sent[operation] += 1  # it failed before doing anything: sent once more
    unobservable = operation in UNOBSERVABLE
    if fault.when == "after" and unobservable:
        expected_sent[operation] += 1  # nothing shows it took effect: sent again (harmless)
    assert dict(mutations(faulty.log, case)) == expected_sent
    if fault.when == "after" and not unobservable:
        # The response was lost after the change was made: the engine reads before anything.
        assert faulty.log[hit + 1] not in MUTATING, faulty.log[hit : hit + 3]


@pytest.mark.parametrize(
    ("case", "operation", "step"),
    [
        (KB842101_2016, "directory.delete", "delete-ad-user"),
        (KB278447_2016, "exchange.reconnect_mailboxes", "reconnect-mailbox"),
        (KB278447_2003, "directory.modify", "remove-exchange-attributes"),
    ],
    ids=lambda value: value.id if isinstance(value, Case) else value,
)
def test_permanent_fault_stops_the_run_with_a_clear_error_and_resume_finishes_it(
    case: Case, operation: str, step: str, tmp_path: Path
) -> None:
    doc = case.document()
    ref = reference(case, doc, tmp_path)
    world = load(doc)
    world.faults.fail(operation, "permanent")
    engine = Engine(state_dir=tmp_path / "state")

    with pytest.raises(PermanentError) as raised:
        apply(engine, case, world, doc).raise_for_stop()

    error = raised.value
    run_dir = only_run(tmp_path / "state")
    failed = events(run_dir, "step.failed")
    assert [record["step"] for record in failed] == [step]
    target = str(failed[0]["target"])
    message = str(error)
    assert error.exit_code == 1
    assert error.operation == operation and error.endpoint in message and operation in message
    assert target in message and error.hint and error.hint in message
    assert world.faults.log.count(operation) == 1, "a permanent error must not be retried"
    assert not events(run_dir, "step.retried")
    assert [r["state"] for r in events(run_dir, "run.finished")] == ["failed"]

    world.faults.clear()
    result = engine.resume(run_dir.name, world, PLAYBOOKS)

    assert result.state == "done" and result.exit_code == 0
    assert comparable(snapshot(world)) == comparable(ref.end)
    assert [r["state"] for r in events(run_dir, "run.finished")] == ["failed", "done"]
