"""The fake Active Directory: DC views, replication lag, tombstones, Tree Delete, USNs, search."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fakes_support import BASE_DN, OU, START, add_user, new_world

from remediate.dn import escape_rdn_value, rdn_value
from remediate.errors import PermanentError, TransientError
from remediate.model import UserQuery


def test_a_deletion_reaches_each_dc_after_that_dcs_own_delay() -> None:
    world = new_world(dcs=[("DC1", 0), ("DC2", 60), ("DC3", 900)])
    user = add_user(world, "Ann Lee")
    world.directory.delete(user.guid, tree=False)

    def live_on(dc: str) -> bool:
        return user.guid in world.directory.read([user.guid], dc)

    assert [live_on(dc) for dc in ("DC1", "DC2", "DC3")] == [False, True, True]
    world.advance(59)
    assert [live_on(dc) for dc in ("DC1", "DC2", "DC3")] == [False, True, True]
    world.advance(1)
    assert [live_on(dc) for dc in ("DC1", "DC2", "DC3")] == [False, False, True]
    world.advance(839)
    assert live_on("DC3")
    world.advance(1)
    assert not live_on("DC3")


def test_a_change_made_through_another_dc_reaches_the_writable_dc_after_its_delay() -> None:
    world = new_world(dcs=[("DC1", 300), ("DC2", 900)])
    user = add_user(world, "Ann Lee")
    world.directory.write("DC2", user.guid, {"description": "via DC2"}, operation="test")
    assert world.directory.read([user.guid], "DC2")[user.guid].get("description") == "via DC2"
    assert world.directory.read([user.guid], "DC1")[user.guid].get("description") is None
    world.advance(300)
    assert world.directory.read([user.guid], "DC1")[user.guid].get("description") == "via DC2"


def test_a_deleted_object_becomes_a_tombstone_under_deleted_objects() -> None:
    world = new_world()
    user = add_user(world, 'Smith, "Smitty"')
    world.directory.delete(user.guid, tree=False)
    tombstone = world.directory.read([user.guid], "DC1", include_deleted=True)[user.guid]
    escaped = escape_rdn_value('Smith, "Smitty"')
    assert tombstone.deleted
    assert tombstone.dn == f"CN={escaped}\\0ADEL:{user.guid},CN=Deleted Objects,{BASE_DN}"
    assert rdn_value(tombstone.dn) == f'Smith, "Smitty"\nDEL:{user.guid}'
    assert tombstone.attributes == {"lastKnownParent": OU, "sAMAccountName": "smithsmitty"}
    assert tombstone.when_created == user.entry.when_created
    assert world.directory.read([user.guid], "DC1") == {}
    assert world.directory.find_users(UserQuery(), "DC1") == []
    assert world.directory.descendants([user.guid], "DC1") == {}


def test_deleting_an_object_with_children_needs_tree_delete() -> None:
    world = new_world()
    user = add_user(world, "Ann Lee")
    child = world.directory.add_object(
        f"CN=ExchangeActiveSyncDevices,{user.entry.dn}", object_class="msExchActiveSyncDevices"
    )
    with pytest.raises(PermanentError) as refused:
        world.directory.delete(user.guid, tree=False)
    assert "notAllowedOnNonLeaf (66)" in str(refused.value)
    assert "Tree Delete" in str(refused.value)
    assert set(world.directory.read([user.guid, child.guid], "DC1")) == {user.guid, child.guid}

    world.directory.delete(user.guid, tree=True)
    gone = world.directory.read([user.guid, child.guid], "DC1", include_deleted=True)
    assert all(entry.deleted for entry in gone.values()) and len(gone) == 2
    assert gone[child.guid].get("lastKnownParent") == user.entry.dn


def test_a_protected_object_is_refused_with_insufficient_access_rights() -> None:
    world = new_world()
    user = add_user(world, "Ann Lee", protected=True)
    with pytest.raises(PermanentError) as refused:
        world.directory.delete(user.guid, tree=True)
    assert "insufficientAccessRights (50)" in str(refused.value)
    assert "protected from accidental deletion" in str(refused.value)
    assert "--allow-protected" in (refused.value.hint or "")
    assert user.guid in world.directory.read([user.guid], "DC1")


def test_unprotect_clears_the_protection_on_the_writable_dc_and_replicates() -> None:
    world = new_world()
    user = add_user(world, "Ann Lee", protected=True)
    world.faults.fail("directory.unprotect")
    with pytest.raises(TransientError):
        world.directory.unprotect(user.guid)
    world.directory.unprotect(user.guid)
    world.directory.unprotect(user.guid)  # already unprotected: nothing changes
    assert not world.directory.read([user.guid], "DC1")[user.guid].protected
    assert world.directory.read([user.guid], "DC2")[user.guid].protected
    world.advance(900)
    assert not world.directory.read([user.guid], "DC2")[user.guid].protected
    world.directory.delete(user.guid, tree=False)
    with pytest.raises(PermanentError, match=r"noSuchObject \(32\).*already deleted"):
        world.directory.unprotect(user.guid)


def test_tree_delete_refuses_when_a_descendant_is_protected_and_deletes_nothing() -> None:
    world = new_world()
    parent = world.directory.add_object(f"OU=Team,{OU}", object_class="organizationalUnit")
    plain = add_user(world, "Plain", parent=parent.dn)
    add_user(world, "Guarded", parent=parent.dn, protected=True)
    with pytest.raises(PermanentError, match=r"insufficientAccessRights \(50\)"):
        world.directory.delete(parent.guid, tree=True)
    assert set(world.directory.read([parent.guid, plain.guid], "DC1")) == {parent.guid, plain.guid}


def test_deleting_a_missing_or_deleted_object_is_no_such_object_naming_it_and_the_dc() -> None:
    world = new_world()
    user = add_user(world, "Ann Lee")
    world.directory.delete(user.guid, tree=False)
    with pytest.raises(PermanentError) as again:
        world.directory.delete(user.guid, tree=False)
    message = str(again.value)
    assert "noSuchObject (32)" in message and str(user.guid) in message and "DC1" in message
    assert again.value.endpoint == "DC1" and again.value.operation == "directory.delete"


def test_usn_changed_is_each_dcs_own_counter() -> None:
    world = new_world()
    first, second = add_user(world, "First"), add_user(world, "Second")
    before = world.directory.read([first.guid], "DC2")[first.guid].usn_changed
    world.directory.modify(second.guid, {"description": "only here"})
    world.directory.write("DC2", second.guid, {"title": "DC2 first"}, operation="test")
    world.directory.modify(first.guid, {"description": "changed"})
    on_dc1 = world.directory.read([first.guid], "DC1")[first.guid]
    assert world.directory.read([first.guid], "DC2")[first.guid].usn_changed == before
    world.advance(900)
    on_dc2 = world.directory.read([first.guid], "DC2")[first.guid]
    assert on_dc2.get("description") == "changed" and on_dc1.get("description") == "changed"
    assert on_dc1.usn_changed > before and on_dc2.usn_changed > before
    assert on_dc1.usn_changed != on_dc2.usn_changed  # DC2 counted its own change first
    assert on_dc2.when_changed == on_dc1.when_changed == START


def test_modify_keeps_attribute_spelling_and_none_clears() -> None:
    world = new_world()
    user = add_user(world, "Ann Lee")
    world.directory.modify(user.guid, {"DISPLAYNAME": "Ann", "mailnickname": None, "title": "CTO"})
    entry = world.directory.read([user.guid], "DC1")[user.guid]
    assert entry.attributes["displayName"] == "Ann"
    assert "mailNickname" not in entry.attributes and entry.attributes["title"] == "CTO"
    assert user.entry.get("displayName") == "Ann Lee"  # stored entries are never mutated


def test_a_modify_that_changes_nothing_moves_no_usn() -> None:
    world = new_world()
    user = add_user(world, "Ann Lee")
    world.directory.modify(user.guid, {"displayName": "Ann Lee", "title": None})
    assert world.directory.read([user.guid], "DC1")[user.guid] is user.entry


def test_modify_refuses_bad_values_and_missing_objects() -> None:
    world = new_world()
    user = add_user(world, "Ann Lee")
    with pytest.raises(PermanentError, match=r"invalidAttributeSyntax \(21\)"):
        world.directory.modify(user.guid, {"msExchMailboxGuid": "not-a-guid"})
    world.directory.delete(user.guid, tree=False)
    with pytest.raises(PermanentError, match=r"noSuchObject \(32\)"):
        world.directory.modify(user.guid, {"title": "x"})


def test_a_late_replicated_change_never_overwrites_a_newer_one() -> None:
    world = new_world(dcs=[("DC1", 600), ("DC2", 900)])
    user = add_user(world, "Ann Lee")
    world.directory.modify(user.guid, {"title": "older, via DC1"})
    world.advance(100)
    world.directory.write("DC2", user.guid, {"title": "newer, via DC2"}, operation="test")
    world.advance(3600)
    titles = {
        dc: world.directory.read([user.guid], dc)[user.guid].get("title") for dc in ("DC1", "DC2")
    }
    assert titles == {"DC1": "newer, via DC2", "DC2": "newer, via DC2"}


def test_a_deletion_wins_over_a_later_modification_from_another_dc() -> None:
    world = new_world()
    user = add_user(world, "Ann Lee")
    world.directory.delete(user.guid, tree=False)
    world.advance(10)
    world.directory.write("DC2", user.guid, {"title": "too late"}, operation="test")
    world.advance(3600)
    for dc in ("DC1", "DC2"):
        assert world.directory.read([user.guid], dc, include_deleted=True)[user.guid].deleted


def test_find_users_narrows_by_every_criterion() -> None:
    world = new_world()
    early = add_user(world, "Early", created=START - timedelta(hours=2))
    inside = add_user(world, "Inside", created=START)
    edge = add_user(world, "Edge", created=START + timedelta(hours=1))
    plain = add_user(world, "Plain", mailbox=False, created=START)
    elsewhere = add_user(world, "Elsewhere", parent=BASE_DN, created=START)
    world.directory.add_object(f"OU=Sub,{OU}", object_class="organizationalUnit")

    def found(**criteria: object) -> set[str]:
        users = world.directory.find_users(UserQuery(**criteria), "DC2")  # type: ignore[arg-type]
        return {user.sam_account_name for user in users}

    assert found() == {"early", "inside", "edge", "plain", "elsewhere"}
    assert found(base_dn=OU.upper()) == {"early", "inside", "edge", "plain"}
    window = {"created_after": START, "created_before": START + timedelta(hours=1)}
    assert found(**window) == {"inside", "edge", "plain", "elsewhere"}
    assert found(sam_account_names=frozenset({"INSIDE", "Plain"})) == {"inside", "plain"}
    assert found(legacy_exchange_dns=frozenset({edge.legacy_dn.upper()})) == {"edge"}
    assert found(mail_enabled_only=True, base_dn=OU, **window) == {"inside", "edge"}
    assert early.guid and elsewhere.guid and inside.guid and plain.guid


def test_find_users_base_is_a_subtree_not_a_string_prefix() -> None:
    world = new_world()
    for name in ("OU=A", "OU=AB", r"OU=A\,B"):
        world.directory.add_object(f"{name},{BASE_DN}", object_class="organizationalUnit")
    in_a = add_user(world, "In A", parent=f"OU=A,{BASE_DN}")
    in_ab = add_user(world, "In AB", parent=f"OU=AB,{BASE_DN}")
    in_comma = add_user(world, "In A comma B", parent=rf"OU=A\,B,{BASE_DN}")
    for base, expected in (
        (f"OU=A,{BASE_DN}", in_a),
        (f"OU=AB,{BASE_DN}", in_ab),
        (rf"OU=A\2CB,{BASE_DN}", in_comma),
    ):
        assert [user.guid for user in world.directory.find_users(UserQuery(base_dn=base))] == [
            expected.guid
        ]


HOSTILE = [
    'Smith, "Smitty"',
    "Star *()\\",
    "\u2018Curly\u2019 \u201aQuotes\u201b",
    "$(whoami)",
    "O'Brien, Se\u00e1n",
    "#Hash+Plus;Semi<Angle>=Equals",
    "x" * 300,
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_found_by_exactly_their_own_searches(name: str) -> None:
    world = new_world()
    ou = world.directory.add_object(
        f"OU={escape_rdn_value(name)},{BASE_DN}", object_class="organizationalUnit"
    )
    decoy = world.directory.add_object(
        f"OU={escape_rdn_value(name[:-1] or 'y')},{BASE_DN}", object_class="organizationalUnit"
    )
    user = add_user(world, name, parent=ou.dn)
    add_user(world, "Decoy", parent=decoy.dn)
    found = world.directory.find_users(UserQuery(base_dn=ou.dn))
    assert [entry.guid for entry in found] == [user.guid]
    assert rdn_value(found[0].dn) == name
    by_sam = world.directory.find_users(
        UserQuery(sam_account_names=frozenset({user.entry.sam_account_name}))
    )
    assert [entry.guid for entry in by_sam] == [user.guid]
    assert [e.guid for e in world.directory.descendants([ou.guid], "DC1")[ou.guid]] == [user.guid]
    world.directory.delete(user.guid, tree=False)
    tombstone = world.directory.read([user.guid], "DC1", include_deleted=True)[user.guid]
    assert rdn_value(tombstone.dn) == f"{name}\nDEL:{user.guid}"
    assert tombstone.get("lastKnownParent") == ou.dn


def test_descendants_are_the_live_objects_below_deepest_first() -> None:
    world = new_world()
    team = world.directory.add_object(f"OU=Team,{OU}", object_class="organizationalUnit")
    sub = world.directory.add_object(f"OU=Sub,{team.dn}", object_class="organizationalUnit")
    deep = add_user(world, "Deep", parent=sub.dn)
    gone = add_user(world, "Gone", parent=team.dn)
    world.directory.delete(gone.guid, tree=False)
    below = world.directory.descendants([team.guid, deep.guid, gone.guid], "DC1")
    assert [entry.guid for entry in below[team.guid]] == [deep.guid, sub.guid]
    assert below[deep.guid] == [] and gone.guid not in below


def test_an_unknown_dc_is_a_permanent_error_listing_the_dcs() -> None:
    world = new_world()
    with pytest.raises(PermanentError, match="known: DC1, DC2") as error:
        world.directory.read([], "DC9")
    assert error.value.endpoint == "DC9"
    assert world.directory.domain_controllers() == ["DC1", "DC2"]
    assert world.directory.writable_dc() == "DC1"
