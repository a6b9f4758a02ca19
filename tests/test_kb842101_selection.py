"""kb842101 deletes only what the cancelled Migration Wizard run created.

The wizard also matches accounts that existed before it ran (migrated earlier with ADMT, so
carrying sIDHistory; same logon name; contacts it turns into users) and the KB sends the
administrator to the Users container, where the DC's own accounts live. The scenario's traps
(``kb842101(..., traps=True)``) put each kind in OU=Migrated, each with a mailbox."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kb_support import json_object
from run_support import YES

from remediate import Engine, get_playbook
from remediate.cli.main import main
from remediate.errors import InputError
from remediate.fakes import FakeWorld, world_from_json, world_to_json
from remediate.fakes.scenarios import KB842101_OU, VERSIONS, kb842101
from remediate.model import DirectoryEntry, utc
from remediate.playbooks.migration_scope import never_selected
from remediate.testing import change_keys

Doc = dict[str, Any]
WINDOW = {"created_after": "2026-11-01T10:00:00Z", "created_before": "2026-11-01T12:00:00Z"}


pytestmark = pytest.mark.usefixtures("quiet")


def trapped(version: str = "2003", size: int = 4) -> Doc:
    return kb842101(size, 5, version=version, traps=True)


def load(doc: Doc) -> FakeWorld:
    return world_from_json(json.loads(json.dumps(doc)))


def objects(doc: Doc) -> dict[str, Doc]:
    return {entry["guid"]: entry for entry in doc["directory"]["objects"]}


def boxes(doc: Doc) -> set[str]:
    return {
        box["guid"]
        for server in doc["exchange"]["servers"]
        for store in server["stores"]
        for box in store["mailboxes"]
    }


def sam(entry: Doc) -> str:
    return str(entry["attributes"]["sAMAccountName"])


@pytest.mark.parametrize("version", ["2003", "2016"])
def test_accounts_the_wizard_only_matched_are_reported_and_untouched(
    version: str, tmp_path: Path
) -> None:
    doc = trapped(version)
    expected = doc["scenario"]["expected"]
    world = load(doc)
    engine, playbook = Engine(state_dir=tmp_path), get_playbook("kb842101")
    parameters = doc["scenario"]["parameters"]

    planned = engine.plan(playbook, world, parameters)
    applied = engine.apply(playbook, world, parameters, safety=YES)

    assert applied.state == "done", applied.error
    assert change_keys(applied.changes) == change_keys(planned.changes)
    after = world_to_json(world)
    before_objects, after_objects = objects(world_to_json(load(doc))), objects(after)
    assert set(before_objects) - set(after_objects) == set(expected["deleted_guids"])
    for guid in [*expected["kept_guids"], *expected["matched_guids"]]:
        assert after_objects[guid] == before_objects[guid]
    assert boxes(doc) - boxes(after) == set(expected["purged_mailboxes"])
    reported = {(f.kind, f.target) for f in planned.findings}
    for guid in expected["kept_guids"]:
        assert ("kept-existing-account", before_objects[guid]["dn"]) in reported
    for guid in expected["matched_guids"]:
        assert ("matched-account", before_objects[guid]["dn"]) in reported
    reasons = " ".join(f.message for f in planned.findings)
    for words in (
        "sIDHistory",
        "isCriticalSystemObject",
        "adminCount=1",
        "RID 501",
        "mailbox_only=true",
    ):
        assert words in reasons


@pytest.mark.parametrize("version", ["2003", "2016"])
def test_mailbox_only_purges_the_mailbox_the_run_created_and_keeps_the_account(
    version: str, tmp_path: Path
) -> None:
    doc = trapped(version)
    expected = doc["scenario"]["expected"]
    world = load(doc)
    engine, playbook = Engine(state_dir=tmp_path), get_playbook("kb842101")
    parameters = {**doc["scenario"]["parameters"], "mailbox_only": "true"}

    planned = engine.plan(playbook, world, parameters)
    applied = engine.apply(playbook, world, parameters, safety=YES)

    assert applied.state == "done", applied.error
    assert change_keys(applied.changes) == change_keys(planned.changes)
    after = world_to_json(world)
    after_objects = objects(after)
    for guid in expected["matched_guids"]:
        assert guid in after_objects, "an existing account was deleted"
        assert "msExchMailboxGuid" not in after_objects[guid]["attributes"]
    assert set(expected["matched_mailboxes"]) <= boxes(doc) - boxes(after)
    before_objects = objects(world_to_json(load(doc)))
    for guid in expected["kept_guids"]:
        assert after_objects[guid] == before_objects[guid]
    assert set(expected["kept_mailboxes"]) <= boxes(after)
    selected = applied.selection_json()
    assert isinstance(selected, dict)
    kept = [u for u in json_object(selected)["users"] if u["keep_account"]]
    assert {u["guid"] for u in kept} == set(expected["matched_guids"])
    assert all("mailbox_only" in u["reason"] for u in kept)


def test_users_outside_the_window_are_findings_not_targets(tmp_path: Path) -> None:
    doc: Doc = kb842101(4, 5)
    everyone = [e for e in objects(doc).values() if e["object_class"] == "user"]
    inside = next(e for e in everyone if e["guid"] in doc["scenario"]["expected"]["deleted_guids"])
    older = next(e for e in everyone if e["when_created"].startswith("2025-"))
    world = load(doc)
    parameters = {**WINDOW, "users": f"{sam(inside)},{sam(older)}"}

    planned = Engine(state_dir=tmp_path).plan(get_playbook("kb842101"), world, parameters)

    selected = planned.selection_json()
    assert isinstance(selected, dict)
    assert [u["guid"] for u in json_object(selected)["users"]] == [inside["guid"]]
    (finding,) = [f for f in planned.findings if f.target == older["dn"]]
    assert finding.kind == "outside-window"
    assert older["when_created"] in finding.message


@pytest.mark.parametrize(
    ("parameters", "words"),
    [
        ({"ou": KB842101_OU}, "created_after and created_before missing"),
        ({"users": "jdoe"}, "created_after and created_before missing"),
        ({"users": "jdoe", "created_after": WINDOW["created_after"]}, "created_before missing"),
    ],
    ids=["ou without window", "users without window", "half a window"],
)
def test_the_creation_window_is_required(parameters: dict[str, str], words: str) -> None:
    with pytest.raises(InputError) as error:
        get_playbook("kb842101").parse(parameters)
    assert words in str(error.value)


def run_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str
) -> tuple[int, list[str]]:
    monkeypatch.setenv("REMEDIATE_STATE_DIR", str(tmp_path / "state"))
    world = tmp_path / "world.json"
    if not world.exists():
        world.write_text(json.dumps(kb842101(4, 5)), encoding="utf-8")
    code = main(["-q", "plan", "kb842101", "--world", str(world), *argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if not line.startswith("{")]


def test_a_mistyped_ou_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    typo = KB842101_OU.replace("Migrated", "Migratd")
    window = [f"-p{key}={value}" for key, value in WINDOW.items()]
    code, lines = run_cli(tmp_path, capsys, monkeypatch, f"-pou={typo}", *window)
    assert code == 1
    assert len(lines) == 1 and f"ou={typo} does not exist" in lines[0]


def test_users_that_match_nothing_are_an_error_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    doc: Doc = kb842101(4, 5)
    real = sam(
        next(
            e
            for e in objects(doc).values()
            if e["guid"] in doc["scenario"]["expected"]["deleted_guids"]
            and e["object_class"] == "user"
        )
    )
    window = [f"-p{key}={value}" for key, value in WINDOW.items()]
    code, lines = run_cli(tmp_path, capsys, monkeypatch, f"-pusers={real},nobody,ghost", *window)
    assert code == 1
    assert len(lines) == 1 and "ghost, nobody" in lines[0]


def test_the_wizards_account_list_is_compared_with_the_selection(tmp_path: Path) -> None:
    doc: Doc = kb842101(4, 5)
    deleted = doc["scenario"]["expected"]["deleted_guids"]
    users = [
        e for e in objects(doc).values() if e["guid"] in deleted and e["object_class"] == "user"
    ]
    listing = tmp_path / "wizard.txt"
    # the first by logon name, the second by DN (other case), one the scope does not select
    listing.write_text(
        f"# accounts\n{sam(users[0])}\n\n{users[1]['dn'].upper()}\nstranger\n", encoding="utf-8"
    )
    parameters = {**doc["scenario"]["parameters"], "account_list": str(listing)}

    planned = Engine(state_dir=tmp_path / "s").plan(get_playbook("kb842101"), load(doc), parameters)

    found = {(f.kind, f.target) for f in planned.findings}
    assert ("listed-not-selected", "stranger") in found
    unlisted = {target for kind, target in found if kind == "selected-not-listed"}
    assert unlisted == {u["dn"] for u in users[2:]}


def test_an_unreadable_account_list_is_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere.txt"
    window = [f"-p{key}={value}" for key, value in WINDOW.items()]
    code, lines = run_cli(
        tmp_path, capsys, monkeypatch, f"-pou={KB842101_OU}", *window, f"-paccount_list={missing}"
    )
    assert code == 1
    assert len(lines) == 1 and str(missing) in lines[0]


def test_the_markdown_ticket_shows_when_each_user_was_created_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    doc: Doc = kb842101(3, 5)
    world = tmp_path / "world.json"
    world.write_text(json.dumps(doc), encoding="utf-8")
    monkeypatch.setenv("REMEDIATE_STATE_DIR", str(tmp_path / "state"))

    code = main(["-q", "plan", "kb842101", "--world", str(world), "--format", "markdown"])

    out = capsys.readouterr().out
    assert code == 2
    assert "| user | created | why selected |" in out
    rows = [line for line in out.splitlines() if "inside the window" in line]
    assert len(rows) == 3
    created = {
        e["when_created"]
        for e in objects(doc).values()
        if e["guid"] in doc["scenario"]["expected"]["deleted_guids"] and e["object_class"] == "user"
    }
    assert {row.split("|")[2].strip() for row in rows} == created


@pytest.mark.parametrize(
    ("sid", "kept"),
    [
        ("S-1-5-21-1004336348-1177238915-682003330-500", True),
        ("S-1-5-21-1004336348-1177238915-682003330-999", True),
        ("S-1-5-21-1004336348-1177238915-682003330-1000", False),
        ("S-1-5-21-500-1-2-1105", False),  # 500 in the domain part is no RID
        ("S-1-5-32-544", True),
    ],
)
def test_the_well_known_rid_rule_reads_the_rid(sid: str, kept: bool) -> None:
    entry = DirectoryEntry(
        uuid4(),
        "CN=x,DC=corp,DC=example",
        "user",
        utc(WINDOW["created_after"]),
        utc(WINDOW["created_after"]),
        1,
        attributes={"objectSid": sid},
    )
    assert (never_selected(entry) is not None) == kept


@settings(max_examples=15, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=8),
    seed=st.integers(min_value=0, max_value=2**32),
    version=st.sampled_from(VERSIONS),
    mailbox_only=st.booleans(),
)
def test_on_any_trapped_world_plan_equals_apply_and_no_existing_account_is_deleted(
    size: int, seed: int, version: str, mailbox_only: bool
) -> None:
    doc: Doc = kb842101(size, seed, version=version, traps=True)
    expected = doc["scenario"]["expected"]
    world = load(doc)
    before = objects(world_to_json(world))
    parameters = {**doc["scenario"]["parameters"], "mailbox_only": str(mailbox_only).lower()}
    with tempfile.TemporaryDirectory() as state:
        engine, playbook = Engine(state_dir=Path(state)), get_playbook("kb842101")
        planned = engine.plan(playbook, world, parameters)
        applied = engine.apply(playbook, world, parameters, safety=YES)

    assert applied.state == "done", applied.error
    assert change_keys(applied.changes) == change_keys(planned.changes)
    after = objects(world_to_json(world))
    assert set(before) - set(after) == set(expected["deleted_guids"])
    for guid in expected["kept_guids"]:
        assert after[guid] == before[guid]
    for guid in expected["matched_guids"]:
        assert (after[guid] == before[guid]) is not mailbox_only


def test_an_ou_holding_users_exists_even_where_the_world_file_leaves_it_out(
    tmp_path: Path,
) -> None:
    doc: Doc = kb842101(3, 5)
    doc["directory"]["objects"] = [
        e for e in doc["directory"]["objects"] if e["object_class"] != "organizationalUnit"
    ]

    planned = Engine(state_dir=tmp_path).plan(
        get_playbook("kb842101"), load(doc), doc["scenario"]["parameters"]
    )

    assert planned.exit_code == 2, planned.error
    assert planned.selection_summary["users"] == 3
