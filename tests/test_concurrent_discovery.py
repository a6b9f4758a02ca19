"""Discovery reads the Exchange servers concurrently, at most ``--parallel`` at a time, and a
plan does not depend on which server answered first: byte for byte the plan made one server
at a time, whatever each server's round trip."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from run_support import Case, Doc, load, parameters, quiet_events

from remediate import Engine, PermanentError
from remediate.engine.concurrent_reads import read_each, reads_at_most
from remediate.fakes import FakeWorld

SERVERS = 5
NAMES = [f"EXCH{n:02d}" for n in range(1, SERVERS + 1)]
CASES = [Case(playbook, "2016", size=10, servers=SERVERS) for playbook in ("kb842101", "kb278447")]


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    yield from quiet_events()


def plan(
    case: Case, doc: Doc, state_dir: Path, parallel: int, latency: float | dict[str, float]
) -> tuple[str, float, FakeWorld]:
    """The plan's JSON, the virtual seconds its discovery took (the rehearsal runs on a copy
    of the world, with its own clock), and the world. ``latency``: of every Exchange call, or
    of each server's."""
    world = load(doc)
    if isinstance(latency, dict):
        world.set_latency(servers=latency)
    else:
        world.set_latency(exchange_s=latency)
    started = world.clock.now()
    result = Engine(state_dir=state_dir, parallel=parallel).plan(
        case.runbook, world, parameters(doc)
    )
    assert result.state == "pending", result.error
    text = json.dumps(result.to_json(), indent=1)
    return text, (world.clock.now() - started).total_seconds(), world


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_discovery_reads_every_server_at_once_and_plans_as_one_by_one(
    case: Case, tmp_path: Path
) -> None:
    doc = case.document()
    one, one_s, world = plan(case, doc, tmp_path / "one", 1, 1.0)
    many, many_s, _ = plan(case, doc, tmp_path / "many", SERVERS, 1.0)

    assert many == one
    # One by one, every call's second adds up; all at once, each question asked of every
    # server costs one server's second.
    calls = sum(1 for op in world.faults.log if op.startswith("exchange."))
    assert one_s == calls
    assert many_s <= 8 and many_s * SERVERS < one_s * 2, (one_s, many_s)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    latency=st.lists(
        st.sampled_from([0.0, 0.5, 1.0, 3.0, 7.0]), min_size=SERVERS, max_size=SERVERS
    ),
    parallel=st.integers(2, SERVERS + 1),
)
def test_a_plan_is_byte_identical_whatever_order_the_servers_answer_in(
    case: Case, latency: list[float], parallel: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Each server its own round trip: the reads end in another order than they were asked.
    doc = case.document()
    slow = dict(zip(NAMES, latency, strict=True))
    one, _, _ = plan(case, doc, tmp_path_factory.mktemp("one"), 1, 0.0)
    many, _, _ = plan(case, doc, tmp_path_factory.mktemp("many"), parallel, slow)

    assert many == one


def test_reads_come_back_in_the_order_asked_not_the_order_answered() -> None:
    world = load(CASES[0].document())
    world.set_latency(servers={name: float(SERVERS - n) for n, name in enumerate(NAMES)})
    answered: list[str] = []

    def read(name: str) -> str:
        world.clock.sleep(0)  # a fake call: the others go on meanwhile
        world.exchange.stores(name)
        answered.append(name)
        return name

    with reads_at_most(SERVERS):
        assert read_each(world.clock, NAMES, read) == NAMES
    assert answered == NAMES[::-1]  # the last server asked was the fastest


def test_a_server_that_cannot_be_read_fails_discovery_naming_it(tmp_path: Path) -> None:
    case = CASES[1]
    doc = case.document()
    world = load(doc)
    world.set_latency(servers=dict.fromkeys(NAMES, 1.0))
    world.faults.fail("exchange.stores", "permanent", times=SERVERS, match="EXCH03")

    with pytest.raises(PermanentError, match="EXCH03"):
        Engine(state_dir=tmp_path, parallel=SERVERS).plan(
            case.runbook, world, parameters(doc)
        ).raise_for_stop()
