"""What the ldap3 adapter does not read twice, on the session's Samba AD DC: a rehearsal is built
from what was just read (only what changed since is read again), and descendants are searched
for where the objects were last seen (found by GUID where they are no longer there)."""

from __future__ import annotations

from collections.abc import Iterator

import ldap3
import pytest
from directory_backends import SAMBA_DC_NAME, SambaBackend, samba_directory, unique
from samba_dc import SambaDC

from remediate.adapters.ldap import LdapDirectory
from remediate.adapters.ldap.snapshot import rehearsal_world
from remediate.model import UserQuery

pytestmark = pytest.mark.samba


@pytest.fixture
def directory(samba_dc: SambaDC) -> Iterator[LdapDirectory]:
    directory = samba_directory(samba_dc)
    yield directory
    directory.close()


def test_a_rehearsal_reuses_what_was_just_read_and_reads_again_only_what_changed_since(
    samba_dc: SambaDC, directory: LdapDirectory
) -> None:
    backend = SambaBackend(samba_dc, directory)
    scope = backend.add(samba_dc.base_dn, unique("reuse-"), "organizationalUnit").dn
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
    backend = SambaBackend(samba_dc, directory)
    scope = backend.add(samba_dc.base_dn, unique("again-"), "organizationalUnit").dn
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
    backend = SambaBackend(samba_dc, directory)
    scope = backend.add(samba_dc.base_dn, unique("moved-"), "organizationalUnit").dn
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
