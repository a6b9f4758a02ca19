"""Crash after every backend operation, then resume: the sweep behind tests/test_crash_resume.py
and bench/reliability.py.

For a case, an uninterrupted apply is counted first (the rehearsal runs on a copy with its own
fault counters, so the world's count is discovery plus apply). Then, for every N from 1 to that
count, a fresh world crashes (``SimulatedCrash``, which nothing may catch) right after its N-th
operation took effect, and the run is continued against the same world object, as a restarted
process would against the same servers: ``resume`` once the run passed its safety gates; before
them nothing was changed, ``resume`` refuses, and a fresh apply does the whole repair.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from run_support import (
    MANUAL_ON_LEGACY,
    Case,
    Doc,
    apply,
    comparable,
    comparable_in_any_order,
    differences,
    events,
    expected,
    load,
    lost_items,
    mutations,
    only_run,
    outside,
    run_dirs,
    same_mutations,
    scope,
    snapshot,
)

from remediate import PLAYBOOKS, Engine, Refused, RunResult
from remediate.engine.runner import load_run_state
from remediate.fakes import FakeWorld, SimulatedCrash
from remediate.fakes.scenarios import VERSIONS
from remediate.turns import Choose

HOURLY = 3600


def every_case() -> list[Case]:
    """Both playbooks on every Exchange version the fakes model. The 2000/2003 stores run the
    cleanup agent hourly instead of nightly: a manual cleanup-agent wait is then a dozen polls
    instead of about 280 identical ones, without losing a kind of crash point."""
    return [
        Case(playbook, version, cleanup_interval_s=HOURLY if version in ("2000", "2003") else None)
        for playbook in ("kb842101", "kb278447")
        for version in VERSIONS
    ]


def first_case_on_the_same_route(case: Case, log: Sequence[str], work: Path) -> Case:
    """The first case of ``every_case()`` whose uninterrupted apply performs exactly ``log``'s
    backend operations in that order (``case`` itself when none comes before it).

    A crash point is an operation of that sequence, so two cases on one route have the same
    crash points, each reached by the same engine code: the fakes' versions differ there in
    what a call carries (cmdlet, service names), never in whether or when a run is journalled,
    stopped or resumed. ``work`` holds the earlier cases' rehearsal runs."""
    for earlier in every_case():
        if earlier == case:
            return case
        if earlier.playbook == case.playbook and _operations(earlier, work) == tuple(log):
            return earlier
    raise ValueError(f"{case.id} is not one of every_case()")


def _operations(case: Case, work: Path) -> tuple[str, ...]:
    if case not in _ROUTES:
        _ROUTES[case] = uninterrupted(case, case.document(), work / case.id).log
    return _ROUTES[case]


_ROUTES: dict[Case, tuple[str, ...]] = {}


@dataclass(frozen=True)
class Reference:
    """What an uninterrupted apply did."""

    before: Doc
    after: Doc
    operations: int  # backend operations, failed ones included
    effective: int  # operations that took effect (crash_after counts these)
    mutations: dict[str, int]
    log: tuple[str, ...]  # the backend operations, in order


def uninterrupted(case: Case, doc: Doc, state_dir: Path) -> Reference:
    world = load(doc)
    before = snapshot(world)
    result = apply(Engine(state_dir=state_dir), case, world, doc)
    assert result.state == "done", result.error
    log = list(world.faults.log)
    # On 2000/2003 the cleanup-agent and recipient-policy calls answer "do it by hand"
    # without taking effect.
    manual = sum(log.count(op) for op in MANUAL_ON_LEGACY) if case.legacy else 0
    return Reference(
        before, snapshot(world), len(log), len(log) - manual, dict(mutations(log, case)), tuple(log)
    )


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
    start = {
        box["guid"]: {item["id"] for item in box["items"]}
        for server in doc["exchange"]["servers"]
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
            if not start[entry["original"]] | start[entry["blank"]] <= held:
                problems.append(f"original mailbox of {entry['user']} misses items")
    return problems


def touched_outside(case: Case, doc: Doc, before: Doc, after: Doc) -> list[str]:
    """The objects, mailboxes and servers outside the run's scope that differ between
    ``before`` and ``after`` (exactly: timestamps and USNs included; a server's services and
    queue must be as they were)."""
    objects, boxes = scope(doc, case.playbook)
    left, right = outside(before, objects, boxes), outside(after, objects, boxes)
    touched = []
    for kind, key in (("objects", "guid"), ("mailboxes", "guid")):
        old = {entry[key]: entry for entry in left[kind]}
        new = {entry[key]: entry for entry in right[kind]}
        touched += [
            f"{kind[:-1]} {name}"
            for name in sorted(set(old) | set(new))
            if old.get(name) != new.get(name)
        ]
    touched += [
        f"server {a[0]}" for a, b in zip(left["servers"], right["servers"], strict=True) if a != b
    ]
    return touched


@dataclass(frozen=True)
class Verdict:
    """How far a run's end state is from the uninterrupted run's."""

    problems: list[str]
    lost: int  # mail items neither in a mailbox nor in an export of the run
    outside: int  # objects, mailboxes, servers outside the scope that changed

    @property
    def converged(self) -> bool:
        return not self.problems


def judge(
    case: Case,
    doc: Doc,
    reference: Reference,
    *,
    world: FakeWorld,
    result: RunResult,
    run_dir: Path,
    any_order: bool = False,
) -> Verdict:
    """``any_order``: the run's batches took turns in another order than the reference's."""
    after = snapshot(world)
    problems = (
        []
        if result.state == "done" and result.exit_code == 0
        else [f"ended {result.state} (exit {result.exit_code}): {result.error}"]
    )
    same = comparable_in_any_order if any_order else comparable
    problems += differences(same(reference.after), same(after))
    lost = lost_items(reference.before, after, run_dir)
    if lost:
        problems.append(f"{len(lost)} mail item(s) lost, e.g. {lost[0]}")
    touched = touched_outside(case, doc, reference.before, after)
    problems += [f"outside the scope: {name} changed" for name in touched[:5]]
    return Verdict(problems, len(lost), len(touched))


@dataclass
class Sweep:
    """A crash after each operation of one case, each continued to the end."""

    case: Case
    reference: Reference
    refused: list[int] = field(default_factory=list)  # before the safety gates: a fresh apply
    resumed: list[int] = field(default_factory=list)
    converged: int = 0
    lost: int = 0
    outside: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def crash_points(self) -> int:
        return len(self.refused) + len(self.resumed)


def sweep(case: Case, work: Path, reference: Reference | None = None) -> Sweep:
    """Crash after every operation of ``case`` (run directories under ``work``); ``reference``:
    its uninterrupted apply, if already made."""
    started = time.perf_counter()
    doc = case.document()
    result = Sweep(case, reference or uninterrupted(case, doc, work / "reference"))
    for n in range(1, result.reference.effective + 1):
        crash_and_continue(result, doc, n, work / f"crash-{n}")
    result.seconds = time.perf_counter() - started
    return result


def crash_and_continue(
    sweep: Sweep, doc: Doc, n: int, state_dir: Path, *, choose: Choose | None = None
) -> None:
    """Crash after the ``n``-th operation, continue, and add the verdict to ``sweep``.
    ``choose``: which of several servers' batches due at once goes on (the interleaving)."""
    case, reference = sweep.case, sweep.reference
    engine = Engine(state_dir=state_dir)
    world = load(doc)
    if choose is not None:
        world.clock.choose = choose
    world.faults.crash_after(n)
    try:
        apply(engine, case, world, doc)
    except SimulatedCrash:
        pass
    else:
        sweep.failures.append(f"crash_after({n}) did not crash")
        return
    crashed_after = world.faults.log[-1]
    run_dir = only_run(state_dir)
    problems: list[str] = []
    if not load_run_state(run_dir).approved:
        sweep.refused.append(n)
        problems += _refused_and_unchanged(engine, case, world, run_dir, reference)
        result = apply(engine, case, world, doc)
        run_dir = state_dir / "runs" / str(result.run_id)
    else:
        sweep.resumed.append(n)
        result = engine.resume(run_dir.name, world, PLAYBOOKS)
        if [r.name for r in run_dirs(state_dir)] != [run_dir.name]:
            problems.append("resume made a run of its own")
        if not events(run_dir, "run.resumed"):
            problems.append("resume left no run.resumed record")
    verdict = judge(
        case,
        doc,
        reference,
        world=world,
        result=result,
        run_dir=run_dir,
        any_order=choose is not None,
    )
    sent = dict(mutations(world.faults.log, case))
    if not same_mutations(sent, reference.mutations):  # a change sent twice, or never sent
        problems.append(f"mutations sent {sent}, uninterrupted run sent {reference.mutations}")
    sweep.converged += verdict.converged
    sweep.lost += verdict.lost
    sweep.outside += verdict.outside
    problems += verdict.problems
    sweep.failures += [f"crash after #{n} ({crashed_after}): {p}" for p in problems]


def _refused_and_unchanged(
    engine: Engine, case: Case, world: FakeWorld, run_dir: Path, reference: Reference
) -> list[str]:
    """A crash before the safety gates: resume refuses, and nothing was changed."""
    problems = []
    try:
        engine.resume(run_dir.name, world, PLAYBOOKS)
        problems.append("resume of a run that never passed its gates was not refused")
    except Refused as refused:
        if "nothing was changed" not in str(refused):
            problems.append(f"refusal does not say nothing was changed: {refused}")
    if snapshot(world) != reference.before:
        problems.append("a crash before approval changed the world")
    if mutations(world.faults.log, case):
        problems.append("a crash before approval sent mutations")
    return problems
