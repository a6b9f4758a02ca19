"""The LDIF backups restore: on a real Samba AD DC, the backup of a deleted user tree re-imported
with ldbadd re-creates every object (parents first) with every attribute it held, and the
backup of a stripped user re-imported with ldbmodify puts back every attribute the strip
cleared, byte for byte (binary values, GUIDs and non-ASCII text included)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import ldap3
import pytest
from directory_backends import SAMBA_DC_NAME, SambaBackend, samba_directory, unique
from samba_dc import SambaDC

from remediate.adapters.ldap import LdapDirectory
from remediate.engine.backups import DirectoryBackups
from remediate.ldif import SYSTEM_OWNED, read_entries
from remediate.model import EXCHANGE_ATTRIBUTES

pytestmark = pytest.mark.samba

# A JPEG-like photo and a logon-hours bitmap: bytes that are no UTF-8 and hold NUL, CR, LF.
PHOTO = bytes(range(256)) + b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\r\n"
HOURS = bytes([0xFF, 0x00, 0x0D, 0x0A, 0x80] * 4 + [0x01])
RIGHTS = bytes.fromhex(
    "01000480140000002000000000000000"
    "2c000000010100000000000512000000"
    "01010000000000051200000002001c00"
    "010000000000140001000200010100000000000512000000"
)
# Attributes the DC keeps by itself on a re-created object, and what the adapter never reads.
_NOT_COMPARED = SYSTEM_OWNED | {"ntsecuritydescriptor", "objectclass"}


@pytest.fixture
def directory(samba_dc: SambaDC) -> Iterator[LdapDirectory]:
    directory = samba_directory(samba_dc)
    yield directory
    directory.close()


def raw(directory: LdapDirectory, dn: str) -> dict[str, list[bytes]]:
    """Every attribute of ``dn`` as the DC holds it (lower-case names, sorted values)."""
    ok, result, response, _ = directory.connection(SAMBA_DC_NAME).search(
        dn, "(objectClass=*)", ldap3.BASE, attributes=["*"]
    )
    assert ok, result
    return {
        name.lower(): sorted(values)
        for name, values in response[0]["raw_attributes"].items()
        if values
    }


def ldb(tool: str, samba_dc: SambaDC, ldif: str) -> None:
    """Import as an operator would with ldifde -i: the tool reads the file as written, but for
    its ``version: 1`` line (RFC 2849's version-spec, which ldb's reader does not take)."""
    text = Path(ldif).read_text("ascii")
    assert text.startswith("version: 1\n")
    given = Path(ldif).with_suffix(".ldb.ldif")
    given.write_text(text.removeprefix("version: 1\n").lstrip("\n"), "ascii")
    done = subprocess.run(
        [tool, "-H", str(samba_dc.base / "dc1" / "private" / "sam.ldb"), str(given)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, f"{tool} failed: {done.stdout[-1500:]} {done.stderr[-1500:]}"


def test_the_ldif_of_a_deleted_user_tree_re_creates_it_attribute_for_attribute(
    samba_dc: SambaDC, directory: LdapDirectory, tmp_path: Path
) -> None:
    backend = SambaBackend(samba_dc, directory)
    scope = backend.add(samba_dc.base_dn, unique("ldif-"), "organizationalUnit").dn
    sam = unique("t")
    user = backend.add(
        scope,
        'Ærø, "Bob" #1',
        "user",
        {
            "sAMAccountName": sam,
            "displayName": "Ærø Bob ",
            "description": ":leading colon",
            "mailNickname": sam,
            "mail": f"{sam}@samdom.test",
            "legacyExchangeDN": f"/o=Corp/ou=Site55/cn=Recipients/cn={sam}",
            "proxyAddresses": [
                f"SMTP:{sam}@samdom.test",
                f"smtp:{sam}@old.samdom.test",
                f"X500:/o=Corp/ou=Site55/cn=Recipients/cn={sam}",
            ],
            "msExchMailboxGuid": str(uuid4()),
        },
    )
    connection = directory.connection(SAMBA_DC_NAME)
    ok, result, _, _ = connection.modify(
        user.dn,
        {
            "thumbnailPhoto": [(ldap3.MODIFY_REPLACE, [PHOTO])],
            "logonHours": [(ldap3.MODIFY_REPLACE, [HOURS])],
        },
    )
    assert ok, result
    devices = backend.add(user.dn, "ExchangeActiveSyncDevices", "container")
    phone = backend.add(devices.dn, "Phone 1", "container")
    originals = {e.dn: raw(directory, e.dn) for e in (user, devices, phone)}

    entries = [*directory.descendants([user.guid], SAMBA_DC_NAME)[user.guid]]
    [read] = directory.read([user.guid], SAMBA_DC_NAME).values()
    assert read.get_binary("thumbnailPhoto") == (PHOTO,)  # kept, not dropped
    backup = DirectoryBackups(tmp_path).save_directory_entries(
        "delete-ad-user", [*entries, read]
    )  # children given first: written parents first
    order = [e.dn for e in read_entries(Path(backup).read_text("ascii"))]
    assert order == [user.dn, devices.dn, phone.dn]
    directory.delete(user.guid, tree=True)
    assert directory.read([user.guid], SAMBA_DC_NAME) == {}

    ldb("ldbadd", samba_dc, backup)
    for dn, before in originals.items():
        after = raw(directory, dn)
        kept = {name: values for name, values in before.items() if name not in _NOT_COMPARED}
        assert {name: after.get(name) for name in kept} == kept, dn


def test_the_ldif_of_a_stripped_user_puts_back_every_attribute_the_strip_cleared(
    samba_dc: SambaDC, directory: LdapDirectory, tmp_path: Path
) -> None:
    backend = SambaBackend(samba_dc, directory)
    scope = backend.add(samba_dc.base_dn, unique("ldif-"), "organizationalUnit").dn
    store = backend.add(scope, "Mailbox Store (EXCH01)", "container").dn
    mta = backend.add(scope, "Microsoft MTA", "container").dn
    sam = unique("s")
    user = backend.add(
        scope,
        "Strip Me",
        "user",
        {
            "sAMAccountName": sam,
            "mailNickname": sam,
            "mail": f"{sam}.own@samdom.test",
            "legacyExchangeDN": f"/o=Corp/ou=First Administrative Group/cn=Recipients/cn={sam}",
            "proxyAddresses": [
                f"SMTP:{sam}.own@samdom.test",
                f"smtp:{sam}@samdom.test",
                f"X400:c=US;a= ;p=Corp;o=Exchange;s={sam};",
            ],
            "homeMDB": store,
            "homeMTA": mta,
            "msExchHomeServerName": "/o=Corp/ou=First Administrative Group/cn=Configuration"
            "/cn=Servers/cn=EXCH01",
            "msExchMailboxGuid": str(UUID(int=0x00FF0D0A_5C000000_0000_0000_00000000)),
        },
    )
    ok, result, _, _ = directory.connection(SAMBA_DC_NAME).modify(
        user.dn, {"msExchMailboxSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [RIGHTS])]}
    )
    assert ok, result
    before = raw(directory, user.dn)
    cleared = [name for name in EXCHANGE_ATTRIBUTES if name.lower() in before]
    assert {"msexchmailboxsecuritydescriptor", "homemta", "msexchmailboxguid"} <= {
        name.lower() for name in cleared
    }

    [entry] = directory.read([user.guid], SAMBA_DC_NAME).values()
    backup = DirectoryBackups(tmp_path).save_cleared_attributes(
        "remove-exchange-attributes", [entry], EXCHANGE_ATTRIBUTES
    )
    directory.modify(user.guid, dict.fromkeys(EXCHANGE_ATTRIBUTES))
    stripped = raw(directory, user.dn)
    assert not {name.lower() for name in EXCHANGE_ATTRIBUTES} & set(stripped)  # none skipped

    ldb("ldbmodify", samba_dc, backup)
    after = raw(directory, user.dn)
    for name in cleared:
        assert after[name.lower()] == before[name.lower()], name
