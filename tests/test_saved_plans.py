"""Saved plans: applied exactly as approved, refused where the world drifted since."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from remediate import PLAYBOOKS, Engine, Options, Refused, Safety, get_playbook
from remediate.cli.main import main
from remediate.engine.planfile import SavedPlan, read_plan, write_plan
from remediate.fakes import FakeWorld, world_from_json, world_to_json
from remediate.fakes.scenarios import kb278447, kb842101
from remediate.model import MailItem, ServiceState

YES = Safety(confirm=lambda text: True)
Doc = dict[str, Any]


def saved(engine: Engine, name: str, world: FakeWorld, params: dict[str, str]) -> SavedPlan:
    result = engine.plan(get_playbook(name), world, params, fingerprint=True)
    assert result.exit_code == 2
    return SavedPlan(
        playbook=name,
        parameters=params,
        options=Options().to_json(),
        organisation=world.organisation,
        source={},
        created=datetime.now(UTC),
        selection=result.selection_json(),
        fingerprints=result.fingerprints,
        changes=[change.to_json() for change in result.changes],
    )


def scenario(name: str) -> tuple[Doc, dict[str, str]]:
    doc: Doc = kb842101(6, 21) if name == "kb842101" else kb278447(5, 21, version="2003")
    return doc, dict(doc["scenario"]["parameters"])


def first_user(doc: Doc) -> UUID:
    expected = doc["scenario"]["expected"]
    if "deleted_guids" in expected:
        return UUID(expected["deleted_guids"][0])
    return UUID(expected["affected"][0]["user"])


def first_mailbox(doc: Doc) -> UUID:
    expected = doc["scenario"]["expected"]
    if "purged_mailboxes" in expected:
        return UUID(expected["exported_mailboxes"][0])
    return UUID(expected["affected"][0]["original"])


def change_attribute(doc: Doc, world: FakeWorld) -> str:
    world.directory.modify(first_user(doc), {"displayName": "Edited after approval"})
    return "displayName"


def move_out_of_the_window(doc: Doc) -> Doc:
    """The checker's way: edit the world file itself (here: the creation time)."""
    victim = str(first_user(doc))
    for obj in doc["directory"]["objects"]:
        if obj["guid"] == victim:
            obj["when_created"] = "2025-01-01T00:00:00Z"
    return doc


def delete_object(doc: Doc, world: FakeWorld) -> str:
    world.directory.delete(first_user(doc), tree=True)
    return "exists"


def deliver_mail(doc: Doc, world: FakeWorld) -> str:
    """Mail arrives for the mailbox's owner while the plan waits for its change window."""
    guid = first_mailbox(doc)
    box = next(
        box
        for server in world.exchange.servers()
        for box in world.exchange.mailboxes(server.name, [guid])
    )
    result = world.deliver(box.server, box.legacy_dn, MailItem("late-1", "Inbox", "late mail"))
    assert result == "delivered", result
    return "items"


def stop_service(doc: Doc, world: FakeWorld) -> str:
    server = world.exchange.servers()[0].name
    world.exchange.set_services(server, ["SMTPSVC"], ServiceState.STOPPED)
    return "state"


DRIFTS: list[tuple[str, str, Callable[[Doc, FakeWorld], str]]] = [
    ("kb842101", "an AD attribute", change_attribute),
    ("kb842101", "an object deleted", delete_object),
    ("kb842101", "a mailbox's items", deliver_mail),
    ("kb278447", "an AD attribute", change_attribute),
    ("kb278447", "a service's state", stop_service),
]


@pytest.mark.parametrize(("name", "kind", "drift"), DRIFTS, ids=[f"{n}-{k}" for n, k, _ in DRIFTS])
def test_a_drifted_target_refuses_the_plan_naming_target_and_attribute(
    name: str, kind: str, drift: Callable[[Doc, FakeWorld], str], engine: Engine
) -> None:
    doc, params = scenario(name)
    world = world_from_json(doc)
    plan = saved(engine, name, world, params)
    attribute = drift(doc, world)
    before = world_to_json(world)

    with pytest.raises(Refused) as refused:
        engine.apply_saved(plan, world, PLAYBOOKS, safety=YES).raise_for_stop()

    message = str(refused.value)
    assert f": {attribute} was " in message
    assert refused.value.exit_code == 3
    assert world_to_json(world)["directory"] == before["directory"]
    assert world_to_json(world)["exchange"] == before["exchange"]


@pytest.mark.parametrize(("name", "kind", "drift"), DRIFTS, ids=[f"{n}-{k}" for n, k, _ in DRIFTS])
def test_skip_drifted_applies_the_rest_and_reports_what_it_skipped(
    name: str, kind: str, drift: Callable[[Doc, FakeWorld], str], engine: Engine
) -> None:
    doc, params = scenario(name)
    world = world_from_json(doc)
    plan = saved(engine, name, world, params)
    drift(doc, world)

    result = engine.apply_saved(plan, world, PLAYBOOKS, safety=YES, skip_drifted=True)

    assert result.state == "done"
    assert result.skipped
    assert result.changes
    approved = {(c["step"], c["target"]) for c in plan.changes if isinstance(c, dict)}
    assert {(c.step, c.target) for c in result.changes} <= approved


def test_an_edited_creation_time_in_the_world_file_is_drift(engine: Engine) -> None:
    doc, params = scenario("kb842101")
    plan = saved(engine, "kb842101", world_from_json(doc), params)
    edited = world_from_json(move_out_of_the_window(json.loads(json.dumps(doc))))
    with pytest.raises(Refused) as refused:
        engine.apply_saved(plan, edited, PLAYBOOKS, safety=YES).raise_for_stop()
    assert ": whenCreated was " in str(refused.value)


def test_an_unchanged_world_applies_the_plan_exactly(engine: Engine) -> None:
    doc, params = scenario("kb842101")
    world = world_from_json(doc)
    plan = saved(engine, "kb842101", world, params)
    result = engine.apply_saved(plan, world, PLAYBOOKS, safety=YES)
    assert result.state == "done"
    assert [c.to_json() for c in result.changes] == plan.changes
    assert not result.warnings and not result.skipped


def test_a_stale_plan_warns(engine: Engine) -> None:
    doc, params = scenario("kb842101")
    world = world_from_json(doc)
    plan = saved(engine, "kb842101", world, params)
    old = replace(plan, created=datetime.now(UTC) - timedelta(days=3))
    result = engine.apply_saved(old, world, PLAYBOOKS, safety=YES, max_age_s=3600)
    assert result.state == "done"
    assert result.warnings and "hours old" in result.warnings[0]


def test_a_plan_file_edited_by_hand_is_refused(tmp_path: Path, engine: Engine) -> None:
    doc, params = scenario("kb842101")
    plan = saved(engine, "kb842101", world_from_json(doc), params)
    path = tmp_path / "plan.json"
    write_plan(plan, path)
    assert read_plan(path).changes == plan.changes
    data = json.loads(path.read_text())
    data["changes"] = data["changes"][1:]
    path.write_text(json.dumps(data))
    with pytest.raises(Refused) as refused:
        read_plan(path)
    assert "changed after it was written" in str(refused.value)


def test_cli_plan_out_then_apply_plan_refuses_drift_and_applies_the_clean_world(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, _ = scenario("kb842101")
    world_file = tmp_path / "world.json"
    world_file.write_text(json.dumps(doc))
    plan_file = tmp_path / "plan.json"
    state = ["--state-dir", str(tmp_path / "state")]
    assert (
        main(
            [*state, "-q", "plan", "kb842101", "--world", str(world_file), "--out", str(plan_file)]
        )
        == 2
    )
    drifted = json.loads(world_file.read_text())
    victim = first_user(doc)
    for obj in drifted["directory"]["objects"]:
        if UUID(obj["guid"]) == victim:
            obj["attributes"]["mailNickname"] = "someone-else"
            victim_dn = obj["dn"]
    drifted_file = tmp_path / "drifted.json"
    drifted_file.write_text(json.dumps(drifted))
    capsys.readouterr()

    code = main([*state, "-q", "apply", str(plan_file), "--world", str(drifted_file), "--yes"])
    err = capsys.readouterr().err
    assert code == 3
    assert victim_dn in err and "mailNickname" in err

    assert main([*state, "-q", "apply", str(plan_file), "--yes", "--format", "json"]) == 0
    applied = json.loads(capsys.readouterr().out)
    assert applied["changes"] == read_plan(plan_file).changes


def test_a_drift_refusal_is_short_and_lists_every_drifted_target_in_json_and_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc: Doc = kb842101(12, 21)
    world_file, plan_file = tmp_path / "world.json", tmp_path / "plan.json"
    world_file.write_text(json.dumps(doc))
    state = ["--state-dir", str(tmp_path / "state")]
    assert (
        main(
            [*state, "-q", "plan", "kb842101", "--world", str(world_file), "--out", str(plan_file)]
        )
        == 2
    )
    deleted = set(doc["scenario"]["expected"]["deleted_guids"])
    for obj in doc["directory"]["objects"]:
        if obj["guid"] in deleted:
            obj["attributes"]["mailNickname"] = "someone-else"
    world_file.write_text(json.dumps(doc))
    capsys.readouterr()

    code = main([*state, "-q", "apply", str(plan_file), "--yes", "--format", "json"])

    out, err = capsys.readouterr()
    assert code == 3
    result = json.loads(out)
    assert result["state"] == "refused"
    assert len(result["drifted"]) == len(deleted) > 5
    assert f"{len(deleted)} target(s)" in result["error"]
    assert f"and {len(deleted) - 5} more" in result["error"]
    assert all(len(line) < 2000 for line in err.splitlines())
    listed = (Path(result["run_dir"]) / "drifted.txt").read_text("utf-8").splitlines()
    assert listed == result["drifted"]
