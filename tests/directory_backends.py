"""The two implementations of the ``Directory`` port the contract suite runs on, seeded the same
way: the fake directory, and the ldap3 adapter on the session's Samba AD DC."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol
from uuid import UUID

import ldap3
from samba_dc import SambaDC

from remediate.adapters.ldap import ConnectionSettings, LdapDirectory, security
from remediate.adapters.ldap.snapshot import rehearsal_world
from remediate.adapters.world import LiveWorld
from remediate.dn import escape_rdn_value, parent_dn
from remediate.fakes import FakeWorld
from remediate.model import AttrValue, DirectoryEntry
from remediate.ports import Directory, World

SAMBA_DC_NAME = "dc1.samdom.test"


def window_parameters(days: int = 1) -> dict[str, str]:
    """kb842101's whenCreated window around objects a test makes now on the test DC (its clock
    is this machine's)."""
    now = datetime.now(UTC)
    return {
        "created_after": (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "created_before": (now + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def window_around_now(days: int = 1) -> list[str]:
    """:func:`window_parameters` as command-line ``-p`` arguments."""
    return [
        part for key, value in window_parameters(days).items() for part in ("-p", f"{key}={value}")
    ]


def directory_section(
    dc: SambaDC,
    *,
    password_env: str = "REMEDIATE_TEST_AD_PASSWORD",
    ca_file: Path | None = None,
    address: str | None = None,
    extra: str = "",
) -> str:
    """An inventory's ``[directory]`` for the test DC: the password from ``password_env``, the
    DC's name at ``address`` (the DC's own by default); ``extra`` lines go in the table."""
    return f"""
[directory]
domain = "samdom.test"
base_dn = "{dc.base_dn}"
bind_user = "{dc.bind_user}"
password_env = "{password_env}"
ca_file = "{ca_file or dc.ca_file}"
{extra}
[directory.addresses]
"{SAMBA_DC_NAME}" = "{address or dc.host}"
"""


class DirectoryBackend(Protocol):
    """A directory to test, and how to put objects in it (not through the port)."""

    directory: Directory
    dc: str

    def add(
        self,
        parent: str,
        name: str,
        object_class: str,
        attributes: Mapping[str, AttrValue] | None = None,
    ) -> DirectoryEntry:
        """Create ``<rdn>=name,parent`` (CN, or OU for an organizationalUnit) as it is now."""
        ...

    def protect(self, entry: DirectoryEntry) -> None:
        """Tick "protect from accidental deletion" (the deny-delete ACE for Everyone)."""
        ...

    def next_second(self) -> None:
        """Let whenCreated move on (AD keeps it to the second)."""
        ...

    def world(self, scope: str) -> World:
        """A world for playbooks whose directory is this one (rehearsed within ``scope``) and
        whose Exchange organisation has no servers."""
        ...


class Rejected(AssertionError):
    """The directory (or the client library, before sending) refused to add an object."""

    def __init__(self, dn: str, reason: str) -> None:
        super().__init__(f"adding {dn} failed: {reason}")
        self.reason = reason


def _rdn(name: str, object_class: str) -> str:
    kind = "OU" if object_class == "organizationalUnit" else "CN"
    return f"{kind}={escape_rdn_value(name)}"


class FakeBackend:
    def __init__(self) -> None:
        self.fake = FakeWorld.create(
            domain="samdom.test",
            base_dn="DC=samdom,DC=test",
            dcs=[(SAMBA_DC_NAME, 0)],
            now=datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
        )
        self.directory: Directory = self.fake.directory
        self.dc = SAMBA_DC_NAME
        self.base_dn = self.fake.directory.base_dn

    def add(
        self,
        parent: str,
        name: str,
        object_class: str,
        attributes: Mapping[str, AttrValue] | None = None,
    ) -> DirectoryEntry:
        return self.fake.directory.add_object(
            f"{_rdn(name, object_class)},{parent}",
            object_class=object_class,
            attributes=dict(attributes or {}),
        )

    def protect(self, entry: DirectoryEntry) -> None:
        self.fake.directory.place(self.dc, replace(entry, protected=True))

    def next_second(self) -> None:
        self.fake.advance(1)

    def world(self, scope: str) -> World:
        return self.fake


def samba_directory(dc: SambaDC) -> LdapDirectory:
    """The adapter on the session's DC, over LDAPS with the DC's own CA and name."""
    settings = ConnectionSettings(
        bind_user=dc.bind_user,
        password=dc.password,
        ca_file=dc.ca_file,
        addresses={SAMBA_DC_NAME: dc.host},
    )
    return LdapDirectory(settings, domain="samdom.test", base_dn=dc.base_dn, dcs=[SAMBA_DC_NAME])


class SambaBackend:
    """Each backend works in its own new OU of the session's DC."""

    def __init__(self, dc: SambaDC, directory: LdapDirectory) -> None:
        self.directory: Directory = directory
        self._ldap = directory
        self.dc = SAMBA_DC_NAME
        self.base_dn = dc.base_dn

    def _connection(self) -> ldap3.Connection:
        return self._ldap.connection(self.dc)

    def add(
        self,
        parent: str,
        name: str,
        object_class: str,
        attributes: Mapping[str, AttrValue] | None = None,
    ) -> DirectoryEntry:
        dn = f"{_rdn(name, object_class)},{parent}"
        values: dict[str, object] = {}
        for key, value in (attributes or {}).items():
            values[key] = UUID(str(value)).bytes_le if key.lower() == "msexchmailboxguid" else value
        try:
            ok, result, _, _ = self._connection().add(dn, [object_class], values)
        except ldap3.core.exceptions.LDAPException as error:
            raise Rejected(dn, f"{type(error).__name__}, in ldap3 before sending") from error
        if not ok:
            raise Rejected(dn, f"{result['description']} ({result['result']})")
        ok, result, response, _ = self._connection().search(
            dn, "(objectClass=*)", ldap3.BASE, attributes=["objectGUID"]
        )
        guid = UUID(bytes_le=response[0]["raw_attributes"]["objectGUID"][0])
        return self._ldap.read([guid], self.dc)[guid]

    def protect(self, entry: DirectoryEntry) -> None:
        """As ADUC does it: deny Everyone DELETE and DELETE_TREE on the object, DELETE_CHILD
        on its parent."""
        self._deny_everyone(f"<GUID={entry.guid}>", security.DELETE | security.DELETE_TREE)
        self._deny_everyone(parent_dn(entry.dn), security.DELETE_CHILD)

    def _deny_everyone(self, dn: str, mask: int) -> None:
        connection = self._connection()
        control = [security.dacl_control()]
        _, _, response, _ = connection.search(
            dn,
            "(objectClass=*)",
            ldap3.BASE,
            attributes=["nTSecurityDescriptor"],
            controls=control,
        )
        descriptor = response[0]["raw_attributes"]["nTSecurityDescriptor"][0]
        changed = security.with_denied_for_everyone(descriptor, mask)
        ok, result, _, _ = connection.modify(
            dn, {"nTSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [changed])]}, controls=control
        )
        if not ok:
            raise AssertionError(f"denying {mask:#x} to Everyone on {dn} failed: {result}")

    def next_second(self) -> None:
        time.sleep(1.05)

    def world(self, scope: str) -> World:
        ldap = self._ldap
        stub = rehearsal_world(ldap, scope)  # its Exchange has no servers: no mailboxes
        return LiveWorld(ldap, stub.exchange, rehearse=lambda: rehearsal_world(ldap, scope))


def unique(prefix: str) -> str:
    """A name no other test uses (tests share the Samba DC)."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"
