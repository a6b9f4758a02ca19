"""kb278447 decides who is affected by evidence, never by which mailbox happens to be connected.

Each world holds a case the scenario builder documents (a departed user's mailbox in retention,
a legacy-DN/objectGUID conflict, a blank never created, a repair half done by hand, an
organisation already repaired, blanks large and empty, a Free/Busy mailbox with items). What
must hold is read from the world before and after, never from the playbook's own selection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from kb_support import (
    Doc,
    attribute,
    expected,
    live_objects,
    load,
    mailbox_guid,
    mailboxes,
    snapshot,
)

from remediate import Engine, RunResult, get_playbook
from remediate.engine.runner import EXIT_DONE, EXIT_LEFT_OUT, EXIT_PENDING
from remediate.fakes import FakeWorld
from remediate.fakes.scenarios import KB278447_CASES, KB278447_WINDOW, VERSIONS, kb278447
from remediate.testing import apply_confirmed

PLAYBOOK = get_playbook("kb278447")


def world_with(*cases: str, size: int = 2, version: str = "2003", seed: int = 5) -> Doc:
    doc: Doc = kb278447(size, seed, version=version, cases=cases)
    return doc


def case(doc: Doc, name: str) -> Doc:
    found: Doc = expected(doc)["cases"][name]
    return found


def connected_to(doc: Doc, user: str) -> str | None:
    return mailbox_guid(live_objects(doc)[user])


def items(doc: Doc, mailbox: str) -> list[str]:
    return [item["id"] for item in mailboxes(doc)[mailbox].box["items"]]


def findings(result: RunResult, doc: Doc, user: str) -> list[tuple[str, str]]:
    dn = live_objects(doc)[user]["dn"]
    return [(f.kind, f.message) for f in result.findings if f.target == dn]


def apply(engine: Engine, world: FakeWorld, params: dict[str, str] | None = None) -> RunResult:
    return apply_confirmed(engine, PLAYBOOK, world, params or {})


def untouched(after: Doc, before: Doc, user: str) -> bool:
    old, new = live_objects(before)[user], live_objects(after)[user]
    return bool(new["attributes"] == old["attributes"] and new["dn"] == old["dn"])


def every_item(doc: Doc) -> set[str]:
    return {item for guid in mailboxes(doc) for item in items(doc, guid)}


# -- reverse repair -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_applying_twice_repairs_once_and_never_back(engine: Engine, version: str) -> None:
    """Blanks small (the scenario's), empty and large (the window decides): the second apply
    in the same state directory changes nothing and says who was already repaired."""
    doc = world_with("big-blank", "empty-blank", version=version)
    world = load(doc)
    first = apply(engine, world, dict(KB278447_WINDOW))
    assert first.state == "done", first.error
    after_first = snapshot(world)
    for name in ("big-blank", "empty-blank"):
        wanted = case(doc, name)
        assert connected_to(after_first, wanted["user"]) == wanted["original"], name
        assert set(items(doc, wanted["blank"])) <= set(items(after_first, wanted["original"]))

    second = apply(engine, world, dict(KB278447_WINDOW))
    assert (second.state, second.exit_code, second.changes) == ("done", EXIT_DONE, [])
    assert snapshot(world) == after_first
    repaired = {f.target for f in second.findings if f.kind == "already-repaired"}
    objects = live_objects(doc)
    users = [c["user"] for c in expected(doc)["affected"]]
    users += [case(doc, name)["user"] for name in ("big-blank", "empty-blank")]
    assert repaired == {objects[user]["dn"] for user in users}


@pytest.mark.parametrize("version", ["2000", "2003", "2016"])
def test_applying_twice_without_the_window_repairs_once(engine: Engine, version: str) -> None:
    """An original with a 5.5 GUID (not the objectGUID) and an empty blank: content decides
    the first run; the second sees the repair in its history and never reverses it, although
    the user is then on a small mailbox with a disconnected one carrying his legacy DN."""
    doc = world_with("empty-blank", version=version)
    wanted = case(doc, "empty-blank")
    world = load(doc)
    first = apply(engine, world)
    assert first.state == "done", first.error
    after_first = snapshot(world)
    assert connected_to(after_first, wanted["user"]) == wanted["original"]
    for _ in range(2):
        again = apply(engine, world)
        assert (again.exit_code, again.changes) == (EXIT_DONE, [])
        assert snapshot(world) == after_first
    for c in expected(doc)["affected"]:
        assert connected_to(after_first, c["user"]) == c["original"]


def test_a_second_apply_without_the_window_or_the_history_changes_nothing(
    tmp_path: Path,
) -> None:
    """A snapshot of an organisation this tool repaired, planned from another state directory
    without the window: the repaired users (a large old blank beside a small original among
    them) are not repaired back."""
    doc = world_with("big-blank", "empty-blank", "repaired")
    world = load(doc)
    done = apply(Engine(state_dir=tmp_path / "first"), world, dict(KB278447_WINDOW))
    assert done.state == "done", done.error
    repaired = snapshot(world)

    for params in ({}, dict(KB278447_WINDOW)):
        fresh = Engine(state_dir=tmp_path / f"fresh-{len(params)}")
        plan = fresh.plan(PLAYBOOK, load(repaired), params)
        assert (plan.exit_code, plan.changes) == (EXIT_DONE, []), params
        again = load(repaired)
        result = apply(fresh, again, params)
        assert (result.exit_code, result.changes) == (EXIT_DONE, [])
        assert snapshot(again) == snapshot(load(repaired))


def test_a_user_broken_again_after_a_repair_is_paired_with_the_same_original(
    engine: Engine,
) -> None:
    """History forbids any other pairing, not the same one again: the broken world applied a
    second time with the same state directory (its users on their blanks again) is repaired
    the same way."""
    doc = world_with("empty-blank")
    first = apply(engine, load(doc))
    assert first.state == "done", first.error
    world = load(doc)
    again = apply(engine, world)
    assert again.state == "done", again.error
    after = snapshot(world)
    wanted = [*expected(doc)["affected"], case(doc, "empty-blank")]
    for c in wanted:
        assert connected_to(after, c["user"]) == c["original"]


def test_an_organisation_repaired_by_hand_is_left_as_it_is(engine: Engine) -> None:
    """Its original has a 5.5 GUID (not the objectGUID) and the old blank, disconnected, carries
    his legacy DN: exactly what a broken user looks like to someone who only compares which
    mailbox is connected."""
    doc = world_with("repaired")
    wanted = case(doc, "repaired")
    world = load(doc)
    result = apply(engine, world)
    after = snapshot(world)
    assert connected_to(after, wanted["user"]) == wanted["original"]
    assert items(after, wanted["original"]) == items(doc, wanted["original"])
    assert mailboxes(after)[wanted["old_blank"]].box == mailboxes(doc)[wanted["old_blank"]].box
    kinds = [kind for kind, _ in findings(result, doc, wanted["user"])]
    assert kinds == ["not-affected"]


def test_a_second_batch_repairs_only_the_users_still_broken(engine: Engine) -> None:
    doc = world_with(size=6)
    affected = expected(doc)["affected"]
    objects = live_objects(doc)
    sam = {c["user"]: attribute(objects[c["user"]], "sAMAccountName") for c in affected}
    first_batch = [c["user"] for c in affected[:3]]
    world = load(doc)
    first = apply(engine, world, {"users": ",".join(sam[user] for user in first_batch)})
    assert first.state == "done", first.error
    between = snapshot(world)

    second = apply(engine, world)
    assert second.state == "done", second.error
    touched = {
        record.target for record in second.changes if record.step == "remove-exchange-attributes"
    }
    assert touched == {f"user:{c['user']}" for c in affected[3:]}
    after = snapshot(world)
    for c in affected:
        assert connected_to(after, c["user"]) == c["original"]
    for user in first_batch:
        assert live_objects(after)[user] == live_objects(between)[user]
        assert [kind for kind, _ in findings(second, doc, user)] == ["already-repaired"]


# -- another person's mailbox, and guessing -------------------------------------------------------


def test_a_departed_users_mailbox_is_never_given_to_the_new_hire_with_his_legacy_dn(
    engine: Engine,
) -> None:
    doc = world_with("departed")
    wanted = case(doc, "departed")
    world = load(doc)
    result = apply(engine, world)
    after = snapshot(world)
    assert connected_to(after, wanted["user"]) == wanted["mailbox"]
    assert untouched(after, doc, wanted["user"])
    assert (
        mailboxes(after)[wanted["departed_mailbox"]].box
        == mailboxes(doc)[wanted["departed_mailbox"]].box
    )
    [(kind, message)] = findings(result, doc, wanted["user"])
    assert kind == "not-affected"
    assert wanted["departed_mailbox"] in message and "before this user was created" in message


def test_a_legacy_dn_and_an_objectguid_naming_different_mailboxes_is_ambiguous(
    engine: Engine,
) -> None:
    doc = world_with("conflict")
    wanted = case(doc, "conflict")
    world = load(doc)
    result = apply(engine, world)
    after = snapshot(world)
    assert untouched(after, doc, wanted["user"])
    for guid in wanted["candidates"]:
        assert mailboxes(after)[guid].box == mailboxes(doc)[guid].box
    [(kind, message)] = findings(result, doc, wanted["user"])
    assert kind == "ambiguous"
    assert all(guid in message for guid in wanted["candidates"])


def test_a_display_name_that_differs_is_ambiguous(engine: Engine) -> None:
    doc = world_with()
    victim = expected(doc)["affected"][0]
    for server in doc["exchange"]["servers"]:
        for store in server["stores"]:
            for box in store["mailboxes"]:
                if box["guid"] == victim["original"]:
                    box["display_name"] = "Somebody Else"
    world = load(doc)
    result = apply(engine, world)
    assert connected_to(snapshot(world), victim["user"]) == victim["blank"]
    [(kind, message)] = findings(result, doc, victim["user"])
    assert kind == "ambiguous" and "Somebody Else" in message


def test_a_user_without_a_display_name_is_matched_by_his_other_names(engine: Engine) -> None:
    """The store names a mailbox after displayName; without one, his cn names it (scenario
    names are the same in both)."""
    doc = world_with()
    victim = expected(doc)["affected"][0]
    for entry in doc["directory"]["objects"]:
        if entry["guid"] == victim["user"]:
            del entry["attributes"]["displayName"]
    world = load(doc)
    result = apply(engine, world)
    assert connected_to(snapshot(world), victim["user"]) == victim["original"], result.findings


# -- silent skips and half-done repairs ---------------------------------------------------------


@pytest.mark.parametrize("version", ["2000", "2003", "2016"])
def test_a_blank_never_created_is_repaired_with_nothing_to_export(
    engine: Engine, version: str
) -> None:
    doc = world_with("never-created", version=version)
    wanted = case(doc, "never-created")
    world = load(doc)
    result = apply(engine, world)
    assert result.state == "done", result.error
    after = snapshot(world)
    assert connected_to(after, wanted["user"]) == wanted["original"]
    assert items(after, wanted["original"]) == items(doc, wanted["original"])
    [info] = world.exchange.mailboxes(
        mailboxes(doc)[wanted["original"]].server, [UUID(wanted["original"])]
    )
    assert info.owner == UUID(wanted["user"]) and not info.disconnected
    exported = {r.target for r in result.changes if r.step == "export-mail"}
    assert not any(wanted["user"] in target for target in exported)


@pytest.mark.parametrize("window", [False, True], ids=["content", "window"])
@pytest.mark.parametrize("version", ["2000", "2003", "2016"])
def test_a_repair_half_done_by_hand_is_finished(engine: Engine, version: str, window: bool) -> None:
    doc = world_with("half-done", version=version)
    wanted = case(doc, "half-done")
    world = load(doc)
    result = apply(engine, world, dict(KB278447_WINDOW) if window else {})
    assert result.state == "done", result.error
    after = snapshot(world)
    assert connected_to(after, wanted["user"]) == wanted["original"]
    assert items(after, wanted["original"]) == items(doc, wanted["original"])
    server = mailboxes(doc)[wanted["original"]].server
    [home] = [s.get("legacy_dn") for s in doc["exchange"]["servers"] if s["name"] == server]
    user = live_objects(after)[wanted["user"]]
    assert attribute(user, "msExchHomeServerName") == home  # on 2000 re-homed in AD by us
    # The blank is already disconnected: no export tool opens it, so it is kept and reported.
    assert mailboxes(after)[wanted["blank"]].box == mailboxes(doc)[wanted["blank"]].box
    kinds = {kind for kind, _ in findings(result, doc, wanted["user"])}
    # Stripped before the run: nothing recorded his addresses, so none are restored (said so).
    assert kinds == {"blank-not-imported", "recipient-not-restored"}
    again = apply(engine, world)
    assert (again.exit_code, again.changes) == (EXIT_DONE, [])


def test_a_stripped_user_with_one_disconnected_mailbox_is_reported_not_reconnected(
    engine: Engine,
) -> None:
    """Without the window, one mailbox carrying a stripped user's identity may be one an
    administrator disabled on purpose: reported, not reconnected."""
    doc = world_with("half-done")
    wanted = case(doc, "half-done")
    for server in doc["exchange"]["servers"]:
        for store in server["stores"]:
            store["mailboxes"] = [b for b in store["mailboxes"] if b["guid"] != wanted["blank"]]
    world = load(doc)
    result = apply(engine, world)
    assert connected_to(snapshot(world), wanted["user"]) is None
    [(kind, message)] = findings(result, doc, wanted["user"])
    assert kind == "ambiguous" and "disabled on purpose" in message
    windowed = apply(Engine(state_dir=engine.store.state_dir / "w"), world, dict(KB278447_WINDOW))
    assert connected_to(snapshot(world), wanted["user"]) == wanted["original"], windowed.error


def test_a_repair_would_fail_for_one_user_so_he_is_left_out_and_the_others_repaired(
    engine: Engine,
) -> None:
    """ExMerge reads legacy DNs one a line: one with a line break cannot be exported, so that
    user is left out (the run used to be refused for everyone)."""
    doc = world_with(size=3)
    bad = expected(doc)["affected"][0]
    broken = "/o=Corp/ou=First Administrative Group/cn=Recipients/cn=bad\nline"
    for entry in doc["directory"]["objects"]:
        if entry["guid"] == bad["user"]:
            entry["attributes"]["legacyExchangeDN"] = broken
    for server in doc["exchange"]["servers"]:
        for store in server["stores"]:
            for box in store["mailboxes"]:
                if box["guid"] in (bad["original"], bad["blank"]):
                    box["legacy_dn"] = broken
    world = load(doc)
    plan = Engine(state_dir=engine.store.state_dir / "plan").plan(PLAYBOOK, world, {})
    assert plan.exit_code == EXIT_PENDING
    result = apply(engine, world)
    assert (result.state, result.exit_code) == ("done", EXIT_LEFT_OUT), result.error
    after = snapshot(world)
    assert connected_to(after, bad["user"]) == bad["blank"]
    for c in expected(doc)["affected"][1:]:
        assert connected_to(after, c["user"]) == c["original"]
    [(kind, message)] = findings(result, doc, bad["user"])
    assert kind == "left-out" and "line break" in message


def test_an_original_another_user_points_at_is_left_out(engine: Engine) -> None:
    doc = world_with(size=2)
    first, second = expected(doc)["affected"]
    for entry in doc["directory"]["objects"]:
        if entry["guid"] == second["user"]:
            entry["attributes"]["msExchMailboxGuid"] = first["original"]
    world = load(doc)
    result = Engine(state_dir=engine.store.state_dir / "plan").plan(PLAYBOOK, world, {})
    [(kind, message)] = findings(result, doc, first["user"])
    assert kind == "left-out" and "linked to another user" in message
    assert result.selection_summary["users"] <= 1


# -- Free/Busy ----------------------------------------------------------------------------------


def test_a_free_busy_mailbox_with_items_is_kept_and_reported_and_the_rest_repaired(
    engine: Engine,
) -> None:
    doc = world_with("free-busy-items")
    free_busy = case(doc, "free-busy-items")["mailbox"]
    world = load(doc)
    result = apply(engine, world, {"purge_freebusy": "true"})
    assert result.state == "done", result.error
    after = snapshot(world)
    assert items(after, free_busy) == items(doc, free_busy) != []
    assert [f.kind for f in result.findings if free_busy in f.message] == ["not-purged"]
    for c in expected(doc)["affected"]:
        assert connected_to(after, c["user"]) == c["original"]


def test_an_empty_free_busy_mailbox_is_purged(engine: Engine) -> None:
    doc = world_with()
    free_busy = expected(doc)["free_busy_mailbox"]
    world = load(doc)
    result = apply(engine, world, {"purge_freebusy": "true"})
    assert result.state == "done", result.error
    assert free_busy not in mailboxes(snapshot(world))


# -- what the approver sees ---------------------------------------------------------------------


def test_the_plan_names_both_mailboxes_and_the_evidence_for_each_pairing(engine: Engine) -> None:
    doc = world_with("big-blank")
    wanted = case(doc, "big-blank")
    plan = engine.plan(PLAYBOOK, load(doc), dict(KB278447_WINDOW))
    [label] = [
        r.label
        for r in plan.changes
        if r.step == "reconnect-mailbox" and r.target.endswith(wanted["original"])
    ]
    user = live_objects(doc)[wanted["user"]]
    name = attribute(user, "displayName")
    assert f"user {name!r}" in label
    for guid, count in (
        (wanted["original"], wanted["old_items"]),
        (wanted["blank"], wanted["new_items"]),
    ):
        assert f"{guid} {name!r}, {count} items" in label
    assert "created 2026-11-01T07:45:00Z" in label  # the blank, made after the upgrade
    assert "disconnected 2026-10-31T22:00:00Z" in label
    assert "decided by window" in label

    without = engine.plan(PLAYBOOK, load(doc), {})
    [(kind, message)] = findings(without, doc, wanted["user"])
    assert kind == "not-affected" and "disconnected_after" in message


def test_the_window_must_be_in_order() -> None:
    with pytest.raises(Exception, match="later than"):
        PLAYBOOK.parse(
            {
                "disconnected_after": "2026-11-02T00:00:00Z",
                "disconnected_before": "2026-11-01T00:00:00Z",
            }
        )


def test_every_case_builds_and_loads() -> None:
    for version in VERSIONS:
        doc: dict[str, Any] = kb278447(3, 9, version=version, cases=KB278447_CASES)
        load(doc)
