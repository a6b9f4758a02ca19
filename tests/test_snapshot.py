"""Snapshot: a world read through the ports plans exactly like the organisation it came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from remediate import Engine, get_playbook
from remediate.cli.main import main
from remediate.engine.reads import retried_reads
from remediate.engine.retry import RetryPolicy
from remediate.errors import TransientError
from remediate.fakes import world_from_json
from remediate.fakes.scenarios import kb278447, kb842101
from remediate.snapshot import snapshot
from remediate.testing import change_keys

CASES = [
    ("kb842101", "2003"),
    ("kb842101", "2016"),
    ("kb278447", "2000"),
    ("kb278447", "2003"),
    ("kb278447", "2013"),
]


@pytest.mark.parametrize(("name", "version"), CASES)
def test_a_snapshot_gives_the_same_plan_as_the_source(
    name: str, version: str, engine: Engine
) -> None:
    builder = kb842101 if name == "kb842101" else kb278447
    doc: dict[str, Any] = builder(9, 3, version=version)
    params = {str(k): str(v) for k, v in doc["scenario"]["parameters"].items()}
    source = world_from_json(doc)
    copy = world_from_json(json.loads(json.dumps(snapshot(source))))
    playbook = get_playbook(name)

    on_source = engine.plan(playbook, source, params)
    on_copy = engine.plan(playbook, copy, params)

    assert on_source.exit_code == on_copy.exit_code == 2
    assert change_keys(on_copy.changes) == change_keys(on_source.changes)
    assert on_copy.findings == on_source.findings
    assert on_copy.selection_json() == on_source.selection_json()


def test_a_snapshot_reads_only_through_the_ports_and_changes_nothing(engine: Engine) -> None:
    doc = kb842101(5, 8)
    source = world_from_json(doc)
    before = json.dumps(snapshot(source), sort_keys=True)
    operations = set(source.faults.log)
    assert operations <= {
        "directory.domain_controllers",
        "directory.writable_dc",
        "directory.find_users",
        "directory.descendants",
        "directory.replication_delays",
        "exchange.servers",
        "exchange.stores",
        "exchange.mailboxes",
        "exchange.service_states",
        "exchange.mail_export_refusal",
        "exchange.running_dependents",
        "exchange.export_location",
    }
    assert json.dumps(snapshot(source), sort_keys=True) == before


def test_cli_snapshot_writes_a_world_that_plans_like_the_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = kb278447(6, 2, version="2003")
    source = tmp_path / "source.json"
    source.write_text(json.dumps(doc))
    out = tmp_path / "snapshot.json"
    state = ["--state-dir", str(tmp_path / "state")]
    assert main([*state, "snapshot", "--world", str(source), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main([*state, "-q", "plan", "kb278447", "--world", str(source), "--format", "json"]) == 2
    planned_on_source = json.loads(capsys.readouterr().out)["changes"]
    assert main([*state, "-q", "plan", "kb278447", "--world", str(out), "--format", "json"]) == 2
    assert json.loads(capsys.readouterr().out)["changes"] == planned_on_source


def test_cli_snapshot_from_an_incomplete_inventory_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "inventory.toml"
    inventory.write_text("[directory]\n")
    code = main(["snapshot", "--inventory", str(inventory), "--out", str(tmp_path / "w.json")])
    assert code == 1
    assert "inventory" in capsys.readouterr().err


def test_a_snapshot_through_retried_reads_outlasts_transient_errors() -> None:
    doc = kb842101(5, 8)
    expected = json.dumps(snapshot(world_from_json(doc)), sort_keys=True)
    flaky = world_from_json(doc)
    for operation in ("directory.find_users", "directory.descendants", "exchange.mailboxes"):
        flaky.faults.fail(operation, times=2)
    flaky.faults.fail("exchange.servers", times=1, when="after")
    data = snapshot(retried_reads(flaky, RetryPolicy()))
    assert flaky.faults.log.count("directory.find_users") == 3
    assert json.dumps(data, sort_keys=True) == expected


def test_a_snapshot_gives_up_on_a_server_that_never_answers_at_the_deadline() -> None:
    world = world_from_json(kb842101(5, 8))
    world.faults.fail("directory.find_users", times=10_000)
    started = world.clock.now()
    with pytest.raises(TransientError):
        snapshot(retried_reads(world, RetryPolicy.within(40.0)))
    took = (world.clock.now() - started).total_seconds()
    assert 40.0 <= took <= 70.0
    assert world.faults.log.count("directory.find_users") > 6  # more than the default's 6


def test_a_snapshot_keeps_the_running_dependents_so_the_rehearsal_stops_them_too(
    engine: Engine,
) -> None:
    doc: dict[str, Any] = kb278447(3, 4, version="2016")
    for server in doc["exchange"]["servers"]:
        server["services"]["ExampleDependent"] = "running"
        server["dependents"] = {"MSExchangeDelivery": ["ExampleDependent"]}
    copied: dict[str, Any] = snapshot(world_from_json(doc))
    [server] = copied["exchange"]["servers"]
    assert server["dependents"] == {"MSExchangeDelivery": ["ExampleDependent"]}
    assert server["services"]["ExampleDependent"] == "running"
