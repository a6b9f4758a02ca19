"""What the ldap3 adapter does not read twice, on the session's Samba AD DC: a rehearsal is built
from what was just read (only what changed since is read again), and descendants are searched
for where the objects were last seen (found by GUID where they are no longer there)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from uuid import UUID

import ldap3
import pytest
from directory_backends import SAMBA_DC_NAME, SambaBackend, samba_directory, unique
from samba_dc import SambaDC

from remediate.adapters.ldap import LdapDirectory
from remediate.adapters.ldap.snapshot import rehearsal_world
from remediate.dn import normalize
from remediate.model import DirectoryEntry, UserQuery

pytestmark = pytest.mark.samba


@pytest.fixture
def directory(samba_dc: SambaDC) -> Iterator[LdapDirectory]:
    directory = samba_directory(samba_dc)
    yield directory
    directory.close()


def _new_ou(samba_dc: SambaDC, directory: LdapDirectory, prefix: str) -> tuple[SambaBackend, str]:
    """A backend on the session's DC and a new OU of its own (named ``prefix`` + a suffix)."""
    backend = SambaBackend(samba_dc, directory)
    return backend, backend.add(samba_dc.base_dn, unique(prefix), "organizationalUnit").dn


def test_a_rehearsal_reuses_what_was_just_read_and_reads_again_only_what_changed_since(
    samba_dc: SambaDC, directory: LdapDirectory
) -> None:
    backend, scope = _new_ou(samba_dc, directory, "reuse-")
    names = ["Ann", "Bob", "Cy"]
    for name in names:
        backend.add(scope, name, "user", {"sAMAccountName": unique("u")})
    ann, bob, cy = sorted(directory.find_users(UserQuery(base_dn=scope)), key=lambda e: e.dn)
    backend.protect(bob)  # written by another client after the read
    directory.connection(SAMBA_DC_NAME).delete(cy.dn)
    before = directory.requests

    rehearsal = rehearsal_world(directory, scope).directory

    # The DC's highestCommittedUSN, what changed since (names only), then Bob again.
    assert directory.requests - before == 3
    copies = rehearsal.read([ann.guid, bob.guid, cy.guid], SAMBA_DC_NAME)
    assert set(copies) == {ann.guid, bob.guid}
    assert copies[bob.guid].protected and not copies[ann.guid].protected
    assert copies[ann.guid] == ann


def test_a_second_rehearsal_without_reads_in_between_reads_the_scope(
    samba_dc: SambaDC, directory: LdapDirectory
) -> None:
    backend, scope = _new_ou(samba_dc, directory, "again-")
    ann = backend.add(scope, "Ann", "user", {"sAMAccountName": unique("u")})
    rehearsal_world(directory, scope)
    directory.connection(SAMBA_DC_NAME).modify(
        ann.dn, {"displayName": [(ldap3.MODIFY_REPLACE, ["Ann Lee"])]}
    )

    again = rehearsal_world(directory, scope).directory

    assert again.read([ann.guid], SAMBA_DC_NAME)[ann.guid].get("displayName") == "Ann Lee"


def test_descendants_of_an_object_moved_since_it_was_read_are_found_where_it_is_now(
    samba_dc: SambaDC, directory: LdapDirectory
) -> None:
    backend, scope = _new_ou(samba_dc, directory, "moved-")
    old = backend.add(scope, "Old", "organizationalUnit").dn
    new = backend.add(scope, "New", "organizationalUnit").dn
    ann = backend.add(old, "Ann", "user", {"sAMAccountName": unique("u")})
    ok, result, _, _ = directory.connection(SAMBA_DC_NAME).modify_dn(
        ann.dn, "CN=Ann", new_superior=new
    )
    assert ok, result
    devices = backend.add(f"CN=Ann,{new}", "Devices", "container")

    below = directory.descendants([ann.guid], SAMBA_DC_NAME)

    assert [entry.guid for entry in below[ann.guid]] == [devices.guid]


# What is held is used again while the DC's change numbers vouch for it, and only then.


def _held(directory: LdapDirectory, backend: SambaBackend, scope: str) -> list[DirectoryEntry]:
    """Three users in ``scope``, read as discovery reads them (users, then what is below)."""
    for name in ("Ann", "Bob", "Cy"):
        backend.add(scope, name, "user", {"sAMAccountName": unique("u")})
    found = sorted(directory.find_users(UserQuery(base_dn=scope)), key=lambda e: e.dn)
    directory.descendants([entry.guid for entry in found], SAMBA_DC_NAME)
    return found


def _requests(directory: LdapDirectory, read: Callable[[], object]) -> int:
    before = directory.requests
    read()
    return directory.requests - before


def test_reading_again_what_nothing_changed_since_costs_one_request_per_call(
    samba_dc: SambaDC, directory: LdapDirectory
) -> None:
    backend, scope = _new_ou(samba_dc, directory, "held-")
    users = _held(directory, backend, scope)
    guids = [user.guid for user in users]

    def observe() -> None:
        assert directory.read(guids, SAMBA_DC_NAME) == {user.guid: user for user in users}
        assert directory.descendants(guids, SAMBA_DC_NAME) == {guid: [] for guid in guids}

    # Per call only the DC's highestCommittedUSN: unchanged, so nothing held has changed.
    assert _requests(directory, observe) == 2


def test_a_change_by_another_client_is_read_again_and_only_that(
    samba_dc: SambaDC, directory: LdapDirectory
) -> None:
    backend, scope = _new_ou(samba_dc, directory, "other-")
    ann, bob, cy = _held(directory, backend, scope)
    other = samba_directory(samba_dc).connection(SAMBA_DC_NAME)
    other.modify(bob.dn, {"displayName": [(ldap3.MODIFY_REPLACE, ["Bob Roe"])]})
    other.delete(cy.dn)

    seen: dict[UUID, DirectoryEntry] = {}
    # highestCommittedUSN, the names changed since, then Bob: Cy's tombstone was among them.
    assert (
        _requests(
            directory,
            lambda: seen.update(directory.read([ann.guid, bob.guid, cy.guid], SAMBA_DC_NAME)),
        )
        == 3
    )
    assert set(seen) == {ann.guid, bob.guid}
    assert seen[bob.guid].get("displayName") == "Bob Roe"
    tombstone = directory.read([cy.guid], SAMBA_DC_NAME, include_deleted=True)[cy.guid]
    assert tombstone.deleted and tombstone.sam_account_name == cy.sam_account_name


def test_changes_elsewhere_cost_a_container_check_only_if_one_could_hold_what_is_held(
    samba_dc: SambaDC, directory: LdapDirectory
) -> None:
    """A user, group or computer never read here cannot be an ancestor of what is held: its
    change (a logon, a password, a member) is no reason to look the containers up again."""
    backend, scope = _new_ou(samba_dc, directory, "busy-")
    ann, _, _ = _held(directory, backend, scope)
    other = samba_directory(samba_dc).connection(SAMBA_DC_NAME)
    elsewhere = f"OU={unique('else-')},{samba_dc.base_dn}"
    assert other.add(elsewhere, ["organizationalUnit"])[0]  # never read here
    # An OU never read here changed: the containers of what is held are looked up by GUID.
    assert _requests(directory, lambda: directory.read([ann.guid], SAMBA_DC_NAME)) == 3
    for name, classes in (("Zed", ["user"]), ("Crew", ["group"]), ("PC1", ["computer"])):
        assert other.add(
            f"CN={name},{elsewhere}", classes, {"sAMAccountName": unique(name.lower())}
        )[0]
    # A user, a group, a computer: highestCommittedUSN and the names changed since, no check.
    assert _requests(directory, lambda: directory.read([ann.guid], SAMBA_DC_NAME)) == 2
    assert other.modify(elsewhere, {"description": [(ldap3.MODIFY_REPLACE, ["moved?"])]})[0]
    assert _requests(directory, lambda: directory.read([ann.guid], SAMBA_DC_NAME)) == 3


def test_our_own_deletes_need_no_read_to_be_verified(
    samba_dc: SambaDC, directory: LdapDirectory
) -> None:
    backend, scope = _new_ou(samba_dc, directory, "ours-")
    users = _held(directory, backend, scope)
    for user in users:
        directory.delete(user.guid, tree=False)
    guids = [user.guid for user in users]

    assert _requests(directory, lambda: directory.read(guids, SAMBA_DC_NAME) == {}) == 2
    assert directory.read(guids, SAMBA_DC_NAME) == {}


def test_objects_added_below_or_moved_away_change_what_descendants_finds(
    samba_dc: SambaDC, directory: LdapDirectory
) -> None:
    backend, scope = _new_ou(samba_dc, directory, "below-")
    elsewhere = backend.add(samba_dc.base_dn, unique("away-"), "organizationalUnit").dn
    ann, bob, _ = _held(directory, backend, scope)
    other = samba_directory(samba_dc).connection(SAMBA_DC_NAME)
    assert other.add(f"CN=Devices,{ann.dn}", ["container"])[0]
    assert other.add(f"CN=Phones,{bob.dn}", ["container"])[0]
    assert other.modify_dn(f"CN=Phones,{bob.dn}", "CN=Phones", new_superior=elsewhere)[0]

    below = directory.descendants([ann.guid, bob.guid], SAMBA_DC_NAME)

    assert [entry.dn for entry in below[ann.guid]] == [f"CN=Devices,{ann.dn}"]
    assert below[bob.guid] == []


def test_a_renamed_ancestor_renames_what_was_held_below_it(
    samba_dc: SambaDC, directory: LdapDirectory
) -> None:
    """AD does not renumber an object when its container is renamed: the held name would go
    stale unnoticed, but for the check of the containers by GUID."""
    backend = SambaBackend(samba_dc, directory)
    other = samba_directory(samba_dc).connection(SAMBA_DC_NAME)
    top = f"OU={unique('top-')},{samba_dc.base_dn}"
    scope = f"OU=Old,{top}"
    for name in (top, scope):  # never read through ``directory``
        assert other.add(name, ["organizationalUnit"])[0]
    ann, _, _ = _held(directory, backend, scope)
    assert other.modify_dn(top, f"OU={unique('renamed-')}")[0]
    top = _only_dn(other, top.split(",", 1)[1], "(ou=renamed-*)")

    now = directory.read([ann.guid], SAMBA_DC_NAME)[ann.guid]

    assert normalize(now.dn) == normalize(f"CN=Ann,OU=Old,{top}")
    below = directory.descendants([ann.guid], SAMBA_DC_NAME)
    assert below == {ann.guid: []}


def _only_dn(connection: ldap3.Connection, base: str, search_filter: str) -> str:
    _, _, response, _ = connection.search(base, search_filter, ldap3.LEVEL)
    (found,) = [item["dn"] for item in response if item["type"] == "searchResEntry"]
    return str(found)
