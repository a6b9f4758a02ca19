"""What the Exchange adapter reads from AD through our own connection (``ExchangeCatalog``):
the searches' filters and how their answers are read. The searches themselves are
:class:`~remediate.adapters.ldap.directory.LdapDirectory`'s.

A mailbox's owner is searched forest-wide on a global catalog: the user behind a mailbox may live
in any domain of the forest, and msExchMailboxGuid is among the attributes Exchange setup adds to
the global catalog's partial attribute set (``isMemberOfPartialAttributeSet``; the test DC's
schema sets it the same way, tests/samba_dc.py). Stores live in the configuration naming
context, which every DC holds whole."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from uuid import UUID

from remediate.dn import normalize, parent_dn, rdn_value
from remediate.model import RECOVERY_STORAGE_GROUP, Store

from . import entries, filters

# Exchange 2000/2003 mailbox stores (class ms-Exch-Private-MDB); msExchOwningServer names the
# server object (CN=<server>,CN=Servers,CN=<administrative group>,...) whose store it is.
STORES = "(objectClass=msExchPrivateMDB)"
STORE_ATTRIBUTES = ("objectGUID", "cn", "msExchOwningServer")
OWNER_ATTRIBUTES = ("objectGUID", "msExchMailboxGuid")

Raw = Mapping[str, Sequence[bytes]]


def owners_filter(mailbox_guids: Iterable[UUID]) -> str:
    """Users whose msExchMailboxGuid is any of these (binary values, each byte escaped)."""
    terms = filters.any_of(
        filters.equals_binary("msExchMailboxGuid", guid.bytes_le) for guid in mailbox_guids
    )
    return f"(&{filters.USERS}{terms})"


def _first(raw: Raw, name: str) -> bytes | None:
    return next(
        (values[0] for key, values in raw.items() if key.lower() == name.lower() and values), None
    )


def add_owners(found: dict[UUID, list[tuple[UUID, str]]], rows: Iterable[tuple[str, Raw]]) -> None:
    """Add each answered user to the list of the mailbox its msExchMailboxGuid names."""
    for dn, raw in rows:
        value = _first(raw, "msExchMailboxGuid")
        if value is not None and len(value) == 16:
            mailbox = UUID(bytes_le=value)
            if mailbox in found:
                found[mailbox].append((entries.guid_of(dn, raw), dn))


def stores_of(server: str, rows: Iterable[tuple[str, Raw]]) -> list[Store]:
    """The stores among ``rows`` that ``server`` owns (its server object's name compared as
    Windows compares computer names, without case), sorted by DN."""
    wanted = server.casefold()
    stores = []
    for dn, raw in rows:
        owner = _first(raw, "msExchOwningServer")
        if owner is None or rdn_value(owner.decode("utf-8")).casefold() != wanted:
            continue
        name = _first(raw, "cn")
        group = parent_dn(dn)
        group_name = rdn_value(group) if group else ""
        # The recovery storage group is known by the name ESM gives it, as the 2003 scripts know
        # it (model.RECOVERY_STORAGE_GROUP).
        stores.append(
            Store(
                server,
                name.decode("utf-8") if name else rdn_value(dn),
                group_name,
                dn,
                group_name.casefold() == RECOVERY_STORAGE_GROUP.casefold(),
            )
        )
    return sorted(stores, key=lambda store: normalize(store.dn))


ACCOUNT_ATTRIBUTES = ("objectGUID", "objectSid")
TOKEN_ATTRIBUTES = ("objectSid", "tokenGroups")
FOREST_TOKEN_ATTRIBUTES = ("objectSid", "tokenGroupsGlobalAndUniversal")


def account_filter(identity: str) -> str:
    """The user a WinRM identity names: ``DOMAIN\\name`` or a bare name by sAMAccountName, a
    user principal name (``name@domain``) by userPrincipalName; the value escaped."""
    if "@" in identity and "\\" not in identity:
        return f"(&{filters.USERS}{filters.equals('userPrincipalName', identity)})"
    name = identity.rsplit("\\", maxsplit=1)[-1]
    return f"(&{filters.USERS}{filters.equals('sAMAccountName', name)})"


def token_sids(raw: Raw) -> set[bytes]:
    """The account's own SID and its groups' (tokenGroups, or tokenGroupsGlobalAndUniversal: the
    transitive memberships as a DC computes them for a token), binary."""
    return {
        value
        for key, values in raw.items()
        if key.lower() in ("objectsid", "tokengroups", "tokengroupsglobalanduniversal")
        for value in values
    }
