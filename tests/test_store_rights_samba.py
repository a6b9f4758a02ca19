"""Send As and Receive As read from the Samba DC: a mailbox store object in the configuration
naming context, an account and a group of it, DACLs written with an LDAP modify of
nTSecurityDescriptor (the SD flags control, DACL only), and the adapter's answer after each
change: a right granted to the group (tokenGroups), an explicit deny, a right inherited from the
store's container. The account is named as an inventory names it, DOMAIN\\name."""

from __future__ import annotations

import struct

import ldap3
import pytest
from directory_backends import SAMBA_DC_NAME, samba_directory, unique
from samba_dc import DOMAIN, SambaDC
from test_catalog_samba import add as _add
from test_store_rights import CONTAINER_INHERIT, RECEIVE_AS, SEND_AS, allow, deny

from remediate.adapters.ldap import security
from remediate.adapters.ldap.connection import ConnectionSettings
from remediate.adapters.ldap.directory import LdapDirectory
from remediate.adapters.winrm.reads import STORE_RIGHTS
from remediate.errors import PermanentError

pytestmark = pytest.mark.samba
GLOBAL_SECURITY_GROUP = -2147483646
DOMAIN_LOCAL_SECURITY_GROUP = -2147483644


def _sid_of(directory: LdapDirectory, dn: str) -> bytes:
    connection = directory.connection(directory.writable_dc())
    answer = connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["objectSid"])
    value: bytes = answer[2][0]["raw_attributes"]["objectSid"][0]
    return value


def _dacl_first(directory: LdapDirectory, dn: str, *aces: bytes) -> None:
    """Put ``aces`` at the head of ``dn``'s DACL (a DACL-only descriptor, as ADUC writes)."""
    connection = directory.connection(directory.writable_dc())
    answer = connection.search(
        dn,
        "(objectClass=*)",
        ldap3.BASE,
        attributes=["nTSecurityDescriptor"],
        controls=[security.dacl_control()],
    )
    current = answer[2][0]["raw_attributes"]["nTSecurityDescriptor"][0]
    offset = struct.unpack_from("<I", current, 16)[0]
    revision, _, size, count, _ = struct.unpack_from("<BBHHH", current, offset)
    kept = current[offset + 8 : offset + size]
    added = b"".join(aces)
    acl = struct.pack("<BBHHH", max(revision, 4), 0, size + len(added), count + len(aces), 0)
    control = struct.unpack_from("<H", current, 2)[0] | security.SE_DACL_PRESENT
    written = struct.pack("<BBHIIII", 1, 0, control, 0, 0, 0, 20) + acl + added + kept
    result = connection.modify(
        dn,
        {"nTSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [written])]},
        controls=[security.dacl_control()],
    )
    assert result[0], result[1]


def test_send_as_and_receive_as_are_read_from_the_stores_dacl(samba_dc: SambaDC) -> None:
    directory = samba_directory(samba_dc)
    try:
        ou = f"OU={unique('rights-')},{samba_dc.base_dn}"
        _add(directory, ou, ["organizationalUnit"])
        name = unique("exmerge")
        user = f"CN={name},{ou}"
        _add(directory, user, ["user"], {"sAMAccountName": name})
        group = f"CN={unique('exmerge-admins-')},{ou}"
        _add(
            directory,
            group,
            ["group"],
            {"sAMAccountName": unique("g"), "member": [user], "groupType": GLOBAL_SECURITY_GROUP},
        )
        container = f"CN={unique('sg-')},CN=Services,CN=Configuration,{samba_dc.base_dn}"
        _add(directory, container, ["container"])
        store = f"CN=Mailbox Store,{container}"
        _add(directory, store, ["msExchPrivateMDB"])
        account = f"{DOMAIN}\\{name}"

        def rights() -> set[object]:
            return set(directory.extended_rights(store, account, STORE_RIGHTS))

        assert rights() == set()
        _dacl_first(directory, store, allow(SEND_AS, _sid_of(directory, group)))
        assert rights() == {SEND_AS}  # through the group: tokenGroups
        _dacl_first(directory, store, deny(SEND_AS, _sid_of(directory, user)))
        assert rights() == set()  # an explicit deny beats the allow
        _dacl_first(
            directory, container, allow(RECEIVE_AS, _sid_of(directory, user), CONTAINER_INHERIT)
        )
        assert rights() == {RECEIVE_AS}  # inherited from the store's container
        with pytest.raises(PermanentError, match="0 users of the forest match"):
            directory.extended_rights(store, f"{DOMAIN}\\*)(sAMAccountName=*", STORE_RIGHTS)
    finally:
        directory.close()


def test_an_account_of_another_domain_is_read_through_the_global_catalog(
    samba_dc: SambaDC,
) -> None:
    """For an account outside the run's domain the pinned DC has no tokenGroups to give; the
    global catalog's tokenGroupsGlobalAndUniversal has its global and universal groups but not
    its domain's local ones. Played here with a directory whose base is an OU the account is
    not in (the Samba DC holds one domain)."""
    directory = samba_directory(samba_dc)
    elsewhere = f"OU={unique('run-domain-')},{samba_dc.base_dn}"
    settings = ConnectionSettings(
        bind_user=samba_dc.bind_user,
        password=samba_dc.password,
        ca_file=samba_dc.ca_file,
        addresses={SAMBA_DC_NAME: samba_dc.host},
    )
    other = LdapDirectory(settings, domain="samdom.test", base_dn=elsewhere, dcs=[SAMBA_DC_NAME])
    try:
        _add(directory, elsewhere, ["organizationalUnit"])
        ou = f"OU={unique('accounts-')},{samba_dc.base_dn}"
        _add(directory, ou, ["organizationalUnit"])
        name = unique("exmerge")
        user = f"CN={name},{ou}"
        _add(directory, user, ["user"], {"sAMAccountName": name})
        global_group, local_group = f"CN={unique('global-')},{ou}", f"CN={unique('local-')},{ou}"
        _add(
            directory,
            global_group,
            ["group"],
            {"sAMAccountName": unique("g"), "member": [user], "groupType": GLOBAL_SECURITY_GROUP},
        )
        _add(
            directory,
            local_group,
            ["group"],
            {
                "sAMAccountName": unique("l"),
                "member": [user],
                "groupType": DOMAIN_LOCAL_SECURITY_GROUP,
            },
        )
        container = f"CN={unique('sg-')},CN=Services,CN=Configuration,{samba_dc.base_dn}"
        _add(directory, container, ["container"])
        store = f"CN=Mailbox Store,{container}"
        _add(directory, store, ["msExchPrivateMDB"])
        _dacl_first(
            directory,
            store,
            allow(SEND_AS, _sid_of(directory, global_group)),
            allow(RECEIVE_AS, _sid_of(directory, local_group)),
        )
        account = f"{DOMAIN}\\{name}"
        assert directory.extended_rights(store, account, STORE_RIGHTS) == {SEND_AS, RECEIVE_AS}
        assert other.extended_rights(store, account, STORE_RIGHTS) == {SEND_AS}
    finally:
        other.close()
        directory.close()
