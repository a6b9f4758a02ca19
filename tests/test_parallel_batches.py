"""A step's endpoint batches run concurrently: a step across many Exchange servers takes as long
as its slowest server, while the end state, the change list's order, the journal's record of
each batch and ``resume`` stay as they are when the servers are worked on one by one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from run_support import (
    Case,
    Doc,
    apply,
    comparable,
    events,
    journal,
    load,
    only_run,
    snapshot,
)

from remediate import PLAYBOOKS, Engine, PermanentError, RunPaused, RunResult
from remediate.cli.main import _engine, build_parser
from remediate.cli.options import CommandOptions
from remediate.engine.parallel import DEFAULT_PARALLEL
from remediate.fakes import FakeWorld

SERVERS = 4
SERVER_NAMES = [f"EXCH{n:02d}" for n in range(1, SERVERS + 1)]
NIGHTLY = 86400
MODERN = [Case(playbook, "2016", size=8, servers=SERVERS) for playbook in ("kb842101", "kb278447")]
LEGACY = [
    Case(playbook, "2003", size=8, servers=SERVERS, cleanup_interval_s=3600)
    for playbook in ("kb842101", "kb278447")
]


pytestmark = pytest.mark.usefixtures("quiet")


def parsed(argv: list[str]) -> CommandOptions:
    return CommandOptions.from_args(build_parser().parse_args(argv))


def run(case: Case, doc: Doc, state_dir: Path, parallel: int) -> tuple[RunResult, FakeWorld, float]:
    """Apply with 1 s of (virtual) latency per Exchange call: the result, the world, and the
    virtual seconds the apply took."""
    world = load(doc)
    world.set_latency(exchange_s=1.0)
    started = world.clock.now()
    result = apply(Engine(state_dir=state_dir, parallel=parallel), case, world, doc)
    assert result.state == "done", result.error
    return result, world, (world.clock.now() - started).total_seconds()


def changes(result: RunResult) -> list[tuple[str, str, str]]:
    return [(record.step, record.target, record.action) for record in result.changes]


@pytest.mark.parametrize("case", MODERN, ids=lambda case: case.id)
def test_servers_in_parallel_reach_the_sequential_end_state_with_the_same_changes_in_less_time(
    case: Case, tmp_path: Path
) -> None:
    doc = case.document()
    one, one_world, one_s = run(case, doc, tmp_path / "one", parallel=1)
    many, many_world, many_s = run(case, doc, tmp_path / "many", parallel=8)

    assert comparable(snapshot(many_world)) == comparable(snapshot(one_world))
    assert changes(many) == changes(one)  # the plan's order, whatever order batches ended in
    assert [(r.step, r.target, r.action) for r in many.planned] == changes(many)
    # One by one, every Exchange call's second adds up; four at a time, most of them overlap.
    calls = sum(1 for operation in one_world.faults.log if operation.startswith("exchange."))
    assert one_s - many_s >= calls / 2, (one_s, many_s, calls)


@pytest.mark.parametrize("case", LEGACY, ids=lambda case: case.id)
def test_servers_in_parallel_on_exchange_2003_reach_the_sequential_end_state_and_plan_equals_apply(
    case: Case, tmp_path: Path
) -> None:
    # One by one, a server's manual cleanup-agent wait lasts long enough for the next server's
    # own scheduled pass to do that server's step first, so only the end states compare.
    doc = case.document()
    _, one_world, _ = run(case, doc, tmp_path / "one", parallel=1)
    many, many_world, _ = run(case, doc, tmp_path / "many", parallel=8)

    assert comparable(snapshot(many_world)) == comparable(snapshot(one_world))
    assert [(r.step, r.target, r.action) for r in many.planned] == changes(many)


def test_the_journal_records_each_batch_start_and_end_with_its_endpoint(tmp_path: Path) -> None:
    case = MODERN[1]
    doc = case.document()
    run(case, doc, tmp_path / "state", parallel=8)
    records = journal(only_run(tmp_path / "state"))
    step = [
        r
        for r in records
        if r["step"] == "export-mail" and r["event"] in ("step.applying", "step.verified")
    ]
    starts = [r["endpoint"] for r in step if r["event"] == "step.applying"]
    ends = [r["endpoint"] for r in step if r["event"] == "step.verified"]
    assert sorted(starts) == sorted(ends) == [f"exchange:{server}" for server in SERVER_NAMES]
    # Concurrent: every server's batch started before the first one ended.
    assert [r["event"] for r in step][:SERVERS] == ["step.applying"] * SERVERS


def test_one_server_failing_lets_the_others_finish_says_which_completed_and_resume_converges(
    tmp_path: Path,
) -> None:
    case = MODERN[1]
    doc = case.document()
    _, reference, _ = run(case, doc, tmp_path / "reference", parallel=8)
    world = load(doc)
    world.set_latency(exchange_s=1.0)
    world.faults.fail("exchange.export_mail", "permanent", match="EXCH02")
    engine = Engine(state_dir=tmp_path / "state", parallel=8)

    with pytest.raises(PermanentError) as raised:
        apply(engine, case, world, doc).raise_for_stop()

    message = str(raised.value)
    assert "EXCH02" in message
    completed = message.split("completed on ")[1].split(";", maxsplit=1)[0].split(", ")
    assert sorted(completed) == ["exchange:EXCH01", "exchange:EXCH03", "exchange:EXCH04"]
    assert "1 of 4 servers left for resume" in message
    run_dir = only_run(tmp_path / "state")
    verified = [
        r["endpoint"] for r in events(run_dir, "step.verified") if r["step"] == "export-mail"
    ]
    # The batches in flight when EXCH02 failed were let end, and recorded.
    assert sorted(verified) == ["exchange:EXCH01", "exchange:EXCH03", "exchange:EXCH04"]
    exported = [r for r in events(run_dir, "step.applied") if r["step"] == "export-mail"]
    assert {r["endpoint"] for r in exported} == {
        "exchange:EXCH01",
        "exchange:EXCH03",
        "exchange:EXCH04",
    }

    world.faults.clear()
    result = engine.resume(run_dir.name, world, PLAYBOOKS)

    assert result.state == "done", result.error
    assert comparable(snapshot(world)) == comparable(snapshot(reference))


def test_manual_steps_on_several_servers_are_announced_together_and_paused_together(
    tmp_path: Path,
) -> None:
    case = Case("kb842101", "2003", size=8, servers=SERVERS)  # nightly agent: outlasts the wait
    doc = case.document()
    world = load(doc)
    engine = Engine(state_dir=tmp_path / "state", parallel=8, manual_deadline_s=600)

    with pytest.raises(RunPaused) as paused:
        apply(engine, case, world, doc).raise_for_stop()

    assert all(f"On {server} " in paused.value.instructions for server in SERVER_NAMES)
    run_dir = only_run(tmp_path / "state")
    step: list[dict[str, Any]] = [
        r
        for r in journal(run_dir)
        if r["step"] == paused.value.step and r["event"] in ("step.manual", "step.waiting")
    ]
    # Every server's instructions are out before any server's wait goes past its first poll.
    first_long_wait = next(i for i, r in enumerate(step) if r.get("polls", 0) >= 2)
    assert [r["event"] for r in step[:first_long_wait]].count("step.manual") == SERVERS
    # Once every store's agent has run (here: its nightly pass), one resume finishes the step.
    world.advance(NIGHTLY)
    result = engine.resume(run_dir.name, world, PLAYBOOKS)
    assert (result.state, result.exit_code) == ("done", 0)


@pytest.mark.parametrize(
    "command",
    [
        ["plan", "kb842101", "--world", "w.json"],
        ["apply", "kb842101", "--world", "w.json"],
        ["resume", "20261101T000000Z-abc"],
    ],
)
def test_plan_apply_and_resume_take_servers_at_a_time(command: list[str]) -> None:
    assert _engine(parsed(command)).parallel == DEFAULT_PARALLEL
    assert _engine(parsed([*command, "--parallel", "1"])).parallel == 1


@pytest.mark.parametrize("value", ["0", "-3", "257", "9" * 5000, "many"])
def test_servers_at_a_time_is_refused_in_one_line_unless_1_to_256(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["apply", "kb842101", "--parallel", value])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert exited.value.code == 1
    assert error.startswith("remediate apply: error: argument --parallel")
