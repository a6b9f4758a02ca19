"""The catalog reads on the Samba DC: owners by msExchMailboxGuid on its global catalog port
(every byte of the GUID escaped in the filter), Exchange 2003 stores from the configuration
naming context by msExchOwningServer, and both end to end behind the WinRM adapter, whose
scripts (over the loopback endpoint) no longer search AD at all."""

from __future__ import annotations

import uuid
from uuid import UUID

import pytest
from directory_backends import samba_directory, unique
from kb_support import load, scenario
from samba_dc import SambaDC
from winrm_support import serve

from remediate.adapters.ldap.directory import LdapDirectory
from remediate.adapters.winrm import WinRmExchange
from remediate.dn import escape_rdn_value, normalize

pytestmark = pytest.mark.samba

# GUIDs whose stored bytes are LDAP filter metacharacters (* ( ) \ NUL): unescaped, they would
# end the filter early, or match every user with any msExchMailboxGuid.
HOSTILE_GUIDS = (UUID(bytes_le=b"*()\\\x00*)(|" + bytes(7)), UUID(bytes_le=b"*" * 16))


def add(
    directory: LdapDirectory,
    dn: str,
    classes: list[str],
    attributes: dict[str, object] | None = None,
) -> None:
    """Add an object on the pinned DC (the test fails with the DC's answer if it cannot)."""
    answer = directory.connection(directory.writable_dc()).add(dn, classes, attributes or {})
    assert answer[0], (dn, answer[1])


def _user_with_mailbox(directory: LdapDirectory, ou: str, mailbox: UUID) -> tuple[UUID, str]:
    name = unique("owner")
    dn = f"CN={name},{ou}"
    add(directory, dn, ["user"], {"sAMAccountName": name, "msExchMailboxGuid": mailbox.bytes_le})
    entry = directory.lookup(dn)
    assert entry is not None
    return entry.guid, entry.dn


def _new_ou(directory: LdapDirectory, base_dn: str) -> str:
    ou = f"OU={unique('catalog-')},{base_dn}"
    add(directory, ou, ["organizationalUnit"])
    return ou


def test_owners_are_read_on_the_global_catalog_with_every_byte_escaped(
    samba_dc: SambaDC,
) -> None:
    directory = samba_directory(samba_dc)
    try:
        ou = _new_ou(directory, samba_dc.base_dn)
        plain, absent = uuid.uuid4(), uuid.uuid4()
        owners = {guid: _user_with_mailbox(directory, ou, guid) for guid in (*HOSTILE_GUIDS, plain)}
        found = directory.mailbox_owners([*owners, absent])
        assert found == {**{guid: [owner] for guid, owner in owners.items()}, absent: []}
        assert directory.requests_by_operation["exchange.owners"] == 1
        # The search went to the global catalog port, as gc:<dc> connections do.
        assert directory.connection(f"gc:{directory.writable_dc()}").server.port == 3269
    finally:
        directory.close()


def _add_store(directory: LdapDirectory, org: str, server: str, group: str, name: str) -> str:
    """A 2003 mailbox store under ``server``'s object, as Exchange lays it out."""
    server_dn = f"CN={escape_rdn_value(server)},CN=Servers,{org}"
    if directory.lookup(server_dn) is None:
        add(directory, server_dn, ["container"])
        add(directory, f"CN=InformationStore,{server_dn}", ["container"])
    group_dn = f"CN={escape_rdn_value(group)},CN=InformationStore,{server_dn}"
    if directory.lookup(group_dn) is None:
        add(directory, group_dn, ["container"])
    store_dn = f"CN={escape_rdn_value(name)},{group_dn}"
    add(directory, store_dn, ["msExchPrivateMDB"], {"msExchOwningServer": server_dn})
    return store_dn


def _new_organisation(directory: LdapDirectory, base_dn: str) -> str:
    org = f"CN={unique('org-')},CN=Services,CN=Configuration,{base_dn}"
    add(directory, org, ["container"])
    add(directory, f"CN=Servers,{org}", ["container"])
    return org


def test_2003_stores_are_read_from_the_configuration_naming_context(samba_dc: SambaDC) -> None:
    directory = samba_directory(samba_dc)
    try:
        org = _new_organisation(directory, samba_dc.base_dn)
        mine, other = unique("EXCH,"), unique("x*)(cn=")
        made = [
            _add_store(directory, org, mine, "First Storage Group", f"Mailbox Store ({mine})"),
            _add_store(directory, org, mine, "SG 2; O'Brien", "Store #2"),
        ]
        _add_store(directory, org, other, "First Storage Group", "Not mine")
        stores = directory.mailbox_stores(mine.upper())  # computer names compare without case
        assert {(s.server, s.name, s.storage_group) for s in stores} == {
            (mine.upper(), f"Mailbox Store ({mine})", "First Storage Group"),
            (mine.upper(), "Store #2", "SG 2; O'Brien"),
        }
        assert {normalize(s.dn) for s in stores} == {normalize(dn) for dn in made}
        assert stores == sorted(stores, key=lambda s: normalize(s.dn))
        assert directory.mailbox_stores(unique("nobody")) == []
    finally:
        directory.close()


@pytest.mark.winrm
def test_2003_stores_and_owners_end_to_end_through_winrm_and_the_samba_dc(
    samba_dc: SambaDC,
) -> None:
    """pywinrm to the loopback endpoint for the store's own reads (WMI), ldap3 to the Samba DC
    for what AD holds: the served world's stores and owners exist only on the DC here."""
    world = load(scenario("kb278447", 3, seed=4242, version="2003"))
    server = world.exchange.servers()[0].name
    directory = samba_directory(samba_dc)
    try:
        org = _new_organisation(directory, samba_dc.base_dn)
        dns = {
            (store.name, store.storage_group): _add_store(
                directory, org, server, store.storage_group, store.name
            )
            for store in world.exchange.stores(server)
        }
        ou = _new_ou(directory, samba_dc.base_dn)
        boxes = world.exchange.mailboxes(server)
        owned = {
            box.guid: _user_with_mailbox(directory, ou, box.guid)[0]
            for box in boxes
            if box.owner is not None
        }
        by_dn = {
            store.dn: (store.name, store.storage_group) for store in world.exchange.stores(server)
        }
        with serve(world) as site:
            exchange = WinRmExchange(site.configs, catalog=directory)
            stores = exchange.stores(server)
            assert {normalize(s.dn) for s in stores} == {normalize(dn) for dn in dns.values()}
            read = {box.guid: box for box in exchange.mailboxes(server)}
        assert {guid: box.owner for guid, box in read.items() if box.owner} == owned
        for box in boxes:
            assert normalize(read[box.guid].store_dn) == normalize(dns[by_dn[box.store_dn]])
    finally:
        directory.close()
