"""``verify`` is a batch per Exchange server like the other steps: its servers are read
concurrently, and what it reports does not depend on the order they answer in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from run_support import Case, apply, load, quiet_events

from remediate import Engine, PermanentError, RunResult
from remediate.engine import events as ev
from remediate.engine.journal import JournalRecord

SERVERS = 4
CASES = [Case(playbook, "2016", size=8, servers=SERVERS) for playbook in ("kb842101", "kb278447")]


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    yield from quiet_events()


def applied(
    case: Case, state_dir: Path, parallel: int, latency: dict[str, float]
) -> tuple[RunResult, float]:
    """Apply, each server answering after its own ``latency``: the result, and the virtual
    seconds ``verify`` took."""
    doc = case.document()
    world = load(doc)
    world.set_latency(servers=latency)
    moments: dict[str, datetime] = {}

    def follow(record: JournalRecord) -> None:
        if record.get("step") == "verify" and record["event"] in (
            ev.STEP_STARTED,
            ev.STEP_COMPLETED,
        ):
            moments[str(record["event"])] = world.clock.now()

    engine = Engine(state_dir=state_dir, parallel=parallel, subscribers=(follow,))
    result = apply(engine, case, world, doc)
    assert result.state == "done", result.error
    took = moments[ev.STEP_COMPLETED] - moments[ev.STEP_STARTED]
    return result, took.total_seconds()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_verify_reads_its_servers_concurrently_in_a_batch_each(case: Case, tmp_path: Path) -> None:
    names = [f"EXCH{n:02d}" for n in range(1, SERVERS + 1)]
    one, one_s = applied(case, tmp_path / "one", 1, dict.fromkeys(names, 1.0))
    many, many_s = applied(case, tmp_path / "many", SERVERS, dict.fromkeys(names, 1.0))

    # One mailbox read per server: their seconds add up one by one, overlap all at once.
    assert one_s == SERVERS
    assert many_s == 1
    assert many.to_json()["changes"] == one.to_json()["changes"]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_verify_failing_on_every_server_names_the_first_in_the_plans_order_whatever_answers_first(
    case: Case, tmp_path: Path
) -> None:
    names = [f"EXCH{n:02d}" for n in range(1, SERVERS + 1)]
    # The first server slowest: its batch fails last, yet its error is the one raised (the
    # step stops on the first failure in the plan's order, as one server at a time would).
    slow_first = {name: float(SERVERS - n) for n, name in enumerate(names)}
    one = failed_verify(case, tmp_path / "one", 1, dict.fromkeys(names, 0.0))
    many = failed_verify(case, tmp_path / "many", SERVERS, slow_first)

    # What completed meanwhile differs (the hint says which servers); the failure does not.
    assert "exchange.mailboxes" in one and many.split(" (")[0] == one.split(" (")[0]


def failed_verify(case: Case, state_dir: Path, parallel: int, latency: dict[str, float]) -> str:
    """The error of an apply whose verify cannot read any server's mailboxes."""
    doc = case.document()
    world = load(doc)
    world.set_latency(servers=latency)

    def follow(record: JournalRecord) -> None:
        if record.get("step") == "verify" and record["event"] == ev.STEP_STARTED:
            world.faults.fail("exchange.mailboxes", "permanent", times=SERVERS)

    engine = Engine(state_dir=state_dir, parallel=parallel, subscribers=(follow,))
    with pytest.raises(PermanentError) as failed:
        apply(engine, case, world, doc).raise_for_stop()
    return str(failed.value)
