"""LDAP filters and GUID names, every value escaped (text: escape_filter_chars; binary:
escape_bytes, never the other way round)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID

from ldap3.utils.conv import escape_bytes, escape_filter_chars

from remediate.model import UserQuery

USERS = "(objectCategory=person)(objectClass=user)"
MAIL_ENABLED = "(|(homeMDB=*)(msExchHomeServerName=*)(msExchMailboxGuid=*))"


def guid_dn(guid: UUID) -> str:
    """The ``<GUID=...>`` name AD resolves to the object (live, or a tombstone with Show
    Deleted), whatever its DN is now. In the hexadecimal form of the GUID's 16 bytes as stored,
    which every DC accepts; the dashed form only Windows Server 2003 and later DCs do (MS-ADTS
    3.1.1.3.1.2.4)."""
    return f"<GUID={guid.bytes_le.hex()}>"


def equals(attribute: str, value: str) -> str:
    return f"({attribute}={escape_filter_chars(value)})"


def equals_binary(attribute: str, value: bytes) -> str:
    return f"({attribute}={escape_bytes(value)})"


def any_of(terms: Iterable[str]) -> str:
    joined = "".join(terms)
    return f"(|{joined})" if joined else "(!(objectClass=*))"


def guids(values: Iterable[UUID]) -> str:
    return any_of(equals_binary("objectGUID", guid.bytes_le) for guid in values)


def namesakes(sam_account_names: Iterable[str]) -> str:
    """Users with any of these sAMAccountNames."""
    return f"(&{USERS}{any_of(equals('sAMAccountName', n) for n in sam_account_names)})"


def generalized_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%d%H%M%S.0Z")


def user_filter(query: UserQuery) -> str:
    """The filter for :class:`UserQuery` (the base DN is the search base, not a filter)."""
    terms = [USERS]
    if query.created_after is not None:
        terms.append(f"(whenCreated>={generalized_time(query.created_after)})")
    if query.created_before is not None:
        terms.append(f"(whenCreated<={generalized_time(query.created_before)})")
    if query.sam_account_names is not None:
        terms.append(any_of(equals("sAMAccountName", n) for n in sorted(query.sam_account_names)))
    if query.legacy_exchange_dns is not None:
        names = sorted(query.legacy_exchange_dns)
        terms.append(any_of(equals("legacyExchangeDN", n) for n in names))
    if query.mail_enabled_only:
        terms.append(MAIL_ENABLED)
    return f"(&{''.join(terms)})"
