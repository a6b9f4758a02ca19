"""A DC that is down can be left out of the replication waits by name (--leave-out-dc): the run
goes on without it and says what that means; where an Exchange server reads AD through nothing
else, it refuses; a name that is no DC is a one-line error."""

from __future__ import annotations

import re
from pathlib import Path
from uuid import UUID

import pytest
from kb_support import Doc, load, parameters, run_dir, scenario

from remediate import PLAYBOOKS, Engine, InputError, Options, Safety, get_playbook
from remediate.cli.main import main
from remediate.engine.backups import MemoryBackups
from remediate.engine.changes import NoOp
from remediate.engine.runstate import load_run_state
from remediate.engine.step import StepContext
from remediate.errors import RemediateError
from remediate.fakes import FakeWorld, save_world
from remediate.steps.replication import (
    DirectoryUse,
    Expectation,
    WaitForReplication,
    replication_targets,
)

DEAD = "DC3"
YES = Safety(confirm=lambda text: True)


def with_dead_dc(version: str = "2010") -> tuple[Doc, FakeWorld]:
    """kb842101's world (EXCH01 reads through DC2) with a third DC that answers nothing."""
    doc = scenario("kb842101", 7, version=version)
    doc["directory"]["dcs"].append({"name": DEAD, "replication_delay_s": 60})
    world = load(doc)
    world.faults.fail("directory.read", "transient", times=10**6, match=f"'{DEAD}'")
    return doc, world


def test_today_a_dead_dc_stops_the_run_at_the_wait(tmp_path: Path) -> None:
    doc, world = with_dead_dc()

    with pytest.raises(RemediateError, match=f"{DEAD} directory.read"):
        Engine(state_dir=tmp_path).apply(
            get_playbook("kb842101"), world, parameters(doc), safety=YES
        ).raise_for_stop()


def test_a_dead_dc_left_out_lets_the_run_finish_with_a_warning_naming_it(tmp_path: Path) -> None:
    doc, world = with_dead_dc()

    result = Engine(state_dir=tmp_path).apply(
        get_playbook("kb842101"),
        world,
        parameters(doc),
        options=Options(leave_out_dcs=("dc3",)),
        safety=YES,
    )

    assert result.exit_code == 0, result.error
    (warning,) = result.warnings
    assert warning.startswith(
        f"domain controller {DEAD} was left out of the replication wait (--leave-out-dc)"
    )
    assert DEAD not in {record.target.removeprefix("dc:") for record in result.changes}
    assert '"leave_out_dcs":["dc3"]' in (run_dir(result) / "journal.jsonl").read_text()


def test_an_exchange_servers_only_dc_left_out_is_refused_naming_the_server(tmp_path: Path) -> None:
    doc = scenario("kb842101", 7, version="2003")  # EXCH01 reads through DC2 alone

    plan = Engine(state_dir=tmp_path).plan(
        get_playbook("kb842101"), load(doc), parameters(doc), Options(leave_out_dcs=("DC2",))
    )

    assert plan.state == "refused"
    assert "EXCH01 looks users up only through DC2, which --leave-out-dc leaves out" in str(
        plan.error
    )


def test_a_dc_no_server_looks_users_up_through_is_left_out_with_a_plain_warning(
    tmp_path: Path,
) -> None:
    """EXCH01 looks users up through its global catalog GC9, not through DC2."""
    doc = scenario("kb842101", 7, version="2003")
    doc["directory"]["dcs"].append(
        {"name": "GC9", "replication_delay_s": 0, "partial_replica": True}
    )
    doc["exchange"]["servers"][0]["global_catalog"] = "GC9"

    plan = Engine(state_dir=tmp_path).plan(
        get_playbook("kb842101"), load(doc), parameters(doc), Options(leave_out_dcs=("DC2",))
    )

    assert plan.exit_code == 2, plan.error
    assert plan.warnings == [
        "domain controller DC2 was left out of the replication wait (--leave-out-dc): it gets "
        "this run's changes only once it is back and replicates, and until then shows the "
        "objects as they were"
    ]


def test_a_server_with_another_global_catalog_gets_a_warning_naming_it() -> None:
    doc = scenario("kb842101", 7, version="2003")
    doc["directory"]["dcs"] += [
        {"name": name, "replication_delay_s": 0, "partial_replica": True} for name in ("GC8", "GC9")
    ]
    world = load(doc)
    step = WaitForReplication(
        replication_targets(
            ["DC1", "DC2"],
            [Expectation(UUID(int=1), deleted=True)],
            [DirectoryUse("EXCH01", ("DC2",), ("GC9", "GC8"))],
        )
    )
    (gc9,) = [target for target in step.targets if target.dc == "GC9"]
    ctx = StepContext(world, MemoryBackups(), Options(leave_out_dcs=("gc9",)))

    change = step.plan(gc9, step.observe(ctx, [gc9])[gc9.key])

    assert change == NoOp(
        "gc:GC9",
        "left out",
        warning=(
            "global catalog GC9 was left out of the replication wait (--leave-out-dc): it gets "
            "this run's changes only once it is back and replicates, and until then shows the "
            "objects as they were; EXCH01 looks users up through it: its cleanup agent may not see "
            "the change until EXCH01 switches to GC8"
        ),
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "DC9",
            "--leave-out-dc DC9: no DC of corp.example and no global catalog an Exchange server "
            "uses has that name (known: DC1, DC2)",
        ),
        ("DC1", "--leave-out-dc DC1: it is the DC this run writes to"),
    ],
)
def test_a_name_that_cannot_be_left_out_is_an_input_error(
    tmp_path: Path, name: str, message: str
) -> None:
    doc = scenario("kb842101", 7, version="2010")

    with pytest.raises(InputError, match=re.escape(message)):
        Engine(state_dir=tmp_path).plan(
            get_playbook("kb842101"), load(doc), parameters(doc), Options(leave_out_dcs=(name,))
        )


def test_the_command_line_takes_it_on_plan_and_says_a_wrong_name_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, world = with_dead_dc()
    world_file = tmp_path / "world.json"
    save_world(world, world_file)
    doc = scenario("kb842101", 7, version="2010")
    argv = [
        "--state-dir",
        str(tmp_path / "state"),
        "plan",
        "kb842101",
        "--world",
        str(world_file),
        *[f"-p{k}={v}" for k, v in parameters(doc).items()],
    ]

    assert main([*argv, "--leave-out-dc", "DC9"]) == 1
    error = capsys.readouterr().err.strip()
    assert "--leave-out-dc DC9: no DC of corp.example" in error
    assert "Traceback" not in error and len(error.splitlines()) == 1

    assert main([*argv, "--leave-out-dc", DEAD, "--leave-out-dc", DEAD]) == 2
    assert f"domain controller {DEAD} was left out" in capsys.readouterr().out


def test_a_run_stopped_by_a_dead_dc_resumes_with_it_left_out(tmp_path: Path) -> None:
    doc, world = with_dead_dc()
    engine = Engine(state_dir=tmp_path)
    with pytest.raises(RemediateError):
        engine.apply(get_playbook("kb842101"), world, parameters(doc), safety=YES).raise_for_stop()
    (run,) = (tmp_path / "runs").iterdir()

    result = engine.resume(run.name, world, PLAYBOOKS, leave_out_dcs=(DEAD,))

    assert result.exit_code == 0, result.error
    assert any(w.startswith(f"domain controller {DEAD} was left out") for w in result.warnings)
    assert load_run_state(run).options.leave_out_dcs == (DEAD,)  # a later resume keeps it
