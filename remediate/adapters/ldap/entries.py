"""LDAP search results as :class:`DirectoryEntry`, and attribute values back to LDAP.

``msExchMailboxGuid`` travels as the 16-byte GUID (``bytes_le``) and is shown as the dashed
string; ``objectGUID`` becomes the entry's ``guid``; other binary attributes (and any value
that is not UTF-8) are kept as bytes in ``DirectoryEntry.binary``, so a backup holds them and
a strip clears them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from uuid import UUID

from remediate.model import (
    BINARY_ATTRIBUTES,
    GUID_ATTRIBUTES,
    NO_BINARY,
    AttrValue,
    DirectoryEntry,
    WriteValue,
)

from . import security

# What every read asks for: all user attributes plus the ones '*' leaves out.
READ_ATTRIBUTES = (
    "*",
    "nTSecurityDescriptor",
    "isDeleted",
    "uSNChanged",
    "whenChanged",
    "parentGUID",
)
# What a search for changed objects asks for: which, where, whether deleted, which change, and
# the class (whether it could lie above what is held).
CHANGE_ATTRIBUTES = ("objectGUID", "isDeleted", "uSNChanged", "parentGUID", "objectClass")
# What a search for the names below a container asks for.
NAME_ATTRIBUTES = ("objectGUID", "parentGUID")
_NOT_SHOWN = frozenset(
    {
        "objectguid",
        "ntsecuritydescriptor",
        "isdeleted",
        "whencreated",
        "whenchanged",
        "usnchanged",
        "objectclass",
        "parentguid",
    }
)


def parse_time(text: str) -> datetime:
    """GeneralizedTime as AD writes it (``20261121135000.0Z``)."""
    return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def _first(raw: Mapping[str, Sequence[bytes]], name: str) -> bytes | None:
    for key, values in raw.items():
        if key.lower() == name.lower() and values:
            return values[0]
    return None


def _text_values(name: str, values: Sequence[bytes]) -> AttrValue | None:
    try:
        if name.lower() in GUID_ATTRIBUTES:
            texts = [str(UUID(bytes_le=value)) for value in values]
        else:
            texts = [value.decode("utf-8") for value in values]
    except (UnicodeDecodeError, ValueError):
        return None  # binary (objectSid, ...): not part of the port's view
    return texts[0] if len(texts) == 1 else texts


def guid_of(dn: str, raw: Mapping[str, Sequence[bytes]]) -> UUID:
    value = _first(raw, "objectGUID")
    if value is None:
        raise ValueError(f"{dn}: no objectGUID in the answer")
    return UUID(bytes_le=value)


def parent_guid_of(raw: Mapping[str, Sequence[bytes]]) -> UUID | None:
    """The constructed ``parentGUID``: the GUID of the container the object lies in."""
    value = _first(raw, "parentGUID")
    return UUID(bytes_le=value) if value and len(value) == 16 else None


def to_usn(raw: Mapping[str, Sequence[bytes]], name: str = "uSNChanged") -> int:
    usn = _first(raw, name)
    return int(usn) if usn else 0


def to_entry(dn: str, raw: Mapping[str, Sequence[bytes]]) -> DirectoryEntry:
    classes = [
        value.decode()
        for key, values in raw.items()
        if key.lower() == "objectclass"
        for value in values
    ]
    attributes: dict[str, AttrValue] = {}
    binary: dict[str, tuple[bytes, ...]] = {}
    for key, values in raw.items():
        if key.lower() in _NOT_SHOWN or not values:
            continue
        text = None if key.lower() in BINARY_ATTRIBUTES else _text_values(key, values)
        if text is not None:
            attributes[key] = text
        else:
            binary[key] = tuple(values)
    created = _first(raw, "whenCreated")
    changed = _first(raw, "whenChanged")
    return DirectoryEntry(
        guid=guid_of(dn, raw),
        dn=dn,
        object_class=classes[-1] if classes else "",
        when_created=parse_time(created.decode()) if created else datetime.min.replace(tzinfo=UTC),
        when_changed=parse_time(changed.decode()) if changed else datetime.min.replace(tzinfo=UTC),
        usn_changed=to_usn(raw),
        protected=security.is_protected(_first(raw, "nTSecurityDescriptor")),
        attributes=attributes,
        deleted=(_first(raw, "isDeleted") or b"").upper() == b"TRUE",
        binary=binary or NO_BINARY,
    )


def to_ldap(name: str, value: WriteValue) -> list[bytes] | list[str]:
    """A port value as the values LDAP takes (a GUID attribute as its 16 bytes, binary values
    as they are)."""
    if isinstance(value, bytes):
        return [value]
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [item for item in value if isinstance(item, bytes)]
    values = [value] if isinstance(value, str) else [str(item) for item in value]
    if name.lower() in GUID_ATTRIBUTES:
        return [UUID(text).bytes_le for text in values]
    return values
