"""The Directory port's contract: the same tests, the same assertions, on the fake directory and
on the ldap3 adapter against a real Samba AD DC."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from directory_backends import (
    DirectoryBackend,
    unique,
)

from remediate.dn import is_within, normalize, rdn_value
from remediate.errors import PermanentError
from remediate.model import DirectoryEntry, UserQuery


def new_ou(backend: DirectoryBackend, parent: str | None = None) -> str:
    base = parent or backend.directory.base_dn
    return backend.add(base, unique("ou-"), "organizationalUnit").dn


def add_user(
    backend: DirectoryBackend, parent: str, name: str | None = None, **attributes: str
) -> DirectoryEntry:
    sam = attributes.pop("sam", None) or unique("u")
    return backend.add(parent, name or sam, "user", {"sAMAccountName": sam, **attributes})


def guids(entries: list[DirectoryEntry]) -> list[UUID]:
    return [entry.guid for entry in entries]


def test_find_users_searches_the_ou_subtree_and_nothing_else(backend: DirectoryBackend) -> None:
    ou = new_ou(backend)
    nested = new_ou(backend, ou)
    sibling = new_ou(backend)
    inside = add_user(backend, ou)
    deeper = add_user(backend, nested)
    add_user(backend, sibling)
    backend.add(ou, unique("c-"), "container")
    found = backend.directory.find_users(UserQuery(base_dn=ou), backend.dc)
    assert sorted(guids(found)) == sorted([inside.guid, deeper.guid])
    assert backend.directory.find_users(UserQuery(base_dn=f"OU=nowhere,{ou}"), backend.dc) == []


def test_find_users_by_creation_window_in_creation_order(backend: DirectoryBackend) -> None:
    ou = new_ou(backend)
    first = add_user(backend, ou)
    backend.next_second()
    second = add_user(backend, ou)
    backend.next_second()
    third = add_user(backend, ou)
    directory = backend.directory

    def window(**bounds: object) -> list[UUID]:
        return guids(directory.find_users(UserQuery(base_dn=ou, **bounds), backend.dc))  # type: ignore[arg-type]

    assert window() == [first.guid, second.guid, third.guid]
    assert window(created_after=second.when_created) == [second.guid, third.guid]
    assert window(created_before=second.when_created) == [first.guid, second.guid]
    assert window(created_after=second.when_created, created_before=second.when_created) == [
        second.guid
    ]


def test_find_users_by_sam_account_name_ignores_case(backend: DirectoryBackend) -> None:
    ou = new_ou(backend)
    ann = add_user(backend, ou, sam=unique("Ann"))
    bob = add_user(backend, ou, sam=unique("bob"))
    add_user(backend, ou)
    query = UserQuery(
        sam_account_names=frozenset({ann.sam_account_name.upper(), bob.sam_account_name})
    )
    assert sorted(guids(backend.directory.find_users(query, backend.dc))) == sorted(
        [ann.guid, bob.guid]
    )
    none = UserQuery(sam_account_names=frozenset())
    assert backend.directory.find_users(none, backend.dc) == []


def test_find_users_by_legacy_dn_and_mail_enabled(backend: DirectoryBackend) -> None:
    ou = new_ou(backend)
    mailbox = str(uuid4())
    legacy = f"/o=Org/ou=Site/cn=Recipients/cn={unique('m')}"
    mailbox_user = add_user(
        backend, ou, legacyExchangeDN=legacy, mailNickname="nick", msExchMailboxGuid=mailbox
    )
    add_user(backend, ou)
    enabled = backend.directory.find_users(
        UserQuery(base_dn=ou, mail_enabled_only=True), backend.dc
    )
    assert guids(enabled) == [mailbox_user.guid]
    assert enabled[0].mailbox_guid == UUID(mailbox)
    assert enabled[0].get("msExchMailboxGuid") == mailbox
    by_legacy = UserQuery(legacy_exchange_dns=frozenset({legacy.upper()}))
    assert guids(backend.directory.find_users(by_legacy, backend.dc)) == [mailbox_user.guid]


def test_a_deleted_user_is_a_tombstone_read_only_with_include_deleted(
    backend: DirectoryBackend,
) -> None:
    ou = new_ou(backend)
    user = add_user(backend, ou, name='Smith, "Smitty"')
    directory = backend.directory
    assert directory.read([user.guid], backend.dc)[user.guid].dn == user.dn
    directory.delete(user.guid, tree=False)
    assert directory.read([user.guid], backend.dc) == {}
    tombstone = directory.read([user.guid], backend.dc, include_deleted=True)[user.guid]
    assert tombstone.deleted
    assert tombstone.guid == user.guid
    assert rdn_value(tombstone.dn) == f'Smith, "Smitty"\nDEL:{user.guid}'
    assert is_within(tombstone.dn, f"CN=Deleted Objects,{directory.base_dn}")
    assert normalize(tombstone.get("lastKnownParent") or "") == normalize(ou)
    assert tombstone.sam_account_name == user.sam_account_name
    assert directory.find_users(UserQuery(base_dn=ou), backend.dc) == []
    assert directory.descendants([user.guid], backend.dc) == {}
    unknown = uuid4()
    assert directory.read([unknown], backend.dc, include_deleted=True) == {}


def test_a_global_catalog_shows_a_user_with_its_recipient_attributes_until_it_is_deleted(
    backend: DirectoryBackend,
) -> None:
    """``read_catalog`` reads the DC's global catalog port: the live object with the partial
    attribute set's values, and nothing once it is deleted."""
    ou = new_ou(backend)
    user = add_user(backend, ou, mail="gc@corp.example", legacyExchangeDN="/o=Corp/cn=gc")
    directory = backend.directory
    seen = directory.read_catalog([user.guid, uuid4()], backend.dc)
    assert list(seen) == [user.guid]
    assert normalize(seen[user.guid].dn) == normalize(user.dn)
    assert (seen[user.guid].get("mail"), seen[user.guid].get("legacyExchangeDN")) == (
        "gc@corp.example",
        "/o=Corp/cn=gc",
    )
    directory.delete(user.guid, tree=False)
    assert directory.read_catalog([user.guid], backend.dc) == {}


def test_descendants_deepest_first_and_tree_delete_removes_them(backend: DirectoryBackend) -> None:
    ou = new_ou(backend)
    user = add_user(backend, ou)
    devices = backend.add(user.dn, "devices", "container")
    phone = backend.add(devices.dn, "phone", "container")
    leaf = add_user(backend, ou)
    directory = backend.directory
    below = directory.descendants([user.guid, leaf.guid, uuid4()], backend.dc)
    assert {guid: guids(found) for guid, found in below.items()} == {
        user.guid: [phone.guid, devices.guid],
        leaf.guid: [],
    }
    with pytest.raises(PermanentError, match=r"notAllowedOnNonLeaf \(66\)"):
        directory.delete(user.guid, tree=False)
    assert user.guid in directory.read([user.guid], backend.dc)
    directory.delete(user.guid, tree=True)
    assert directory.read([user.guid, devices.guid, phone.guid, leaf.guid], backend.dc).keys() == {
        leaf.guid
    }
    tombstones = directory.read([devices.guid, phone.guid], backend.dc, include_deleted=True)
    assert all(entry.deleted for entry in tombstones.values())
    assert len(tombstones) == 2


def test_deleting_twice_or_modifying_a_deleted_user_is_no_such_object(
    backend: DirectoryBackend,
) -> None:
    user = add_user(backend, new_ou(backend))
    backend.directory.delete(user.guid, tree=False)
    with pytest.raises(PermanentError, match=r"noSuchObject \(32\)") as deleted:
        backend.directory.delete(user.guid, tree=False)
    assert str(user.guid) in str(deleted.value)
    assert backend.dc in str(deleted.value)
    with pytest.raises(PermanentError, match=r"noSuchObject \(32\)"):
        backend.directory.modify(user.guid, {"description": "x"})


def test_a_protected_user_cannot_be_deleted_until_unprotected(backend: DirectoryBackend) -> None:
    user = add_user(backend, new_ou(backend))
    directory = backend.directory
    assert not user.protected
    backend.protect(user)
    assert directory.read([user.guid], backend.dc)[user.guid].protected
    with pytest.raises(PermanentError, match=r"insufficientAccessRights \(50\)") as refused:
        directory.delete(user.guid, tree=False)
    assert backend.dc in str(refused.value)
    directory.unprotect(user.guid)
    directory.unprotect(user.guid)  # already unprotected: nothing to do
    assert not directory.read([user.guid], backend.dc)[user.guid].protected
    directory.delete(user.guid, tree=False)
    assert directory.read([user.guid], backend.dc) == {}


def test_modify_replaces_and_clears_attributes(backend: DirectoryBackend) -> None:
    user = add_user(backend, new_ou(backend), mailNickname="before", description="keep")
    directory = backend.directory
    mailbox = uuid4()
    directory.modify(
        user.guid,
        {"mailNickname": "after", "msExchMailboxGuid": str(mailbox), "homeMTA": None},
    )
    changed = directory.read([user.guid], backend.dc)[user.guid]
    assert changed.get("mailNickname") == "after"
    assert changed.mailbox_guid == mailbox
    assert changed.get("description") == "keep"
    directory.modify(user.guid, {"mailNickname": None, "msExchMailboxGuid": None})
    cleared = directory.read([user.guid], backend.dc)[user.guid]
    assert cleared.get("mailNickname") is None
    assert cleared.mailbox_guid is None
    assert not cleared.mail_enabled
    assert cleared.get("description") == "keep"
    with pytest.raises(PermanentError, match=r"invalidAttributeSyntax \(21\)"):
        directory.modify(user.guid, {"msExchMailboxGuid": "not a guid"})


HOSTILE_NAMES = (
    'O\'Brien, "Bob"',
    "star*(paren)\\back",
    "curly \u2019quotes\u201d \u201cboth\u2019",
    "$(rm -rf ~) `id`",
    "a,b+c=d;e<f>g#h",
    "#leading hash",
    "x" * 64,
)


@pytest.mark.security
@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_names_are_found_exactly_and_deleted(backend: DirectoryBackend, name: str) -> None:
    ou = new_ou(backend)
    legacy = f"/o=Org/cn=Recipients/cn={name}"
    target = add_user(backend, ou, name=name, legacyExchangeDN=legacy)
    # Decoys a missing escape would match: wildcards, a prefix, the unescaped pieces.
    decoys = [
        add_user(backend, ou, name=f"{name[:20]} decoy", legacyExchangeDN=legacy + "x"),
        add_user(backend, ou, legacyExchangeDN="/o=Org/cn=Recipients/cn=star"),
        add_user(backend, ou, legacyExchangeDN="/o=Org/cn=Recipients/cn="),
    ]
    directory = backend.directory
    assert rdn_value(target.dn) == name
    for query in (
        UserQuery(legacy_exchange_dns=frozenset({legacy})),
        UserQuery(base_dn=ou, legacy_exchange_dns=frozenset({legacy})),
        UserQuery(sam_account_names=frozenset({target.sam_account_name})),
    ):
        assert guids(directory.find_users(query, backend.dc)) == [target.guid]
    directory.delete(target.guid, tree=False)
    remaining = directory.find_users(UserQuery(base_dn=ou), backend.dc)
    assert sorted(guids(remaining)) == sorted(guids(decoys))
    tombstone = directory.read([target.guid], backend.dc, include_deleted=True)[target.guid]
    assert rdn_value(tombstone.dn) == f"{name}\nDEL:{target.guid}"


def test_lookup_reads_one_object_by_name_and_none_for_a_missing_one(
    backend: DirectoryBackend,
) -> None:
    ou = new_ou(backend)
    user = add_user(backend, ou, "Looked Up")

    found = backend.directory.lookup(user.dn, backend.dc)
    container = backend.directory.lookup(ou.upper(), backend.dc)  # names compare as AD does

    assert found is not None and found.guid == user.guid
    assert container is not None and container.object_class == "organizationalUnit"
    assert backend.directory.lookup(f"OU=Missing,{ou}", backend.dc) is None
