"""Whether an account holds an extended right (a control access right) on an AD object, decided
from the object's DACL as Windows' access check decides it (MS-DTYP 2.5.3.2): the ACEs are
walked in their stored order, skipping inherit-only ones and those for SIDs the account's token
lacks, and the first ACE that covers the right, allow or deny, decides; none: not held. The order
AD stores (explicit deny, explicit allow, inherited deny, inherited allow) is what makes an
explicit allow win over an inherited deny (KB292509). No DACL at all grants everything; an
empty one, nothing.

The self-relative descriptor (MS-DTYP 2.4.6) and its ACEs (2.4.4): ACCESS_ALLOWED_ACE and
ACCESS_DENIED_ACE (header, mask, SID) cover every control access right when their mask has
ADS_RIGHT_DS_CONTROL_ACCESS; the object ACEs (header, mask, flags, an optional ObjectType GUID,
an optional InheritedObjectType GUID, SID) cover the one right their ObjectType names, or all
when it is absent."""

from __future__ import annotations

import struct
from collections.abc import Collection, Iterator
from typing import NamedTuple
from uuid import UUID

ACCESS_ALLOWED, ACCESS_DENIED = 0x00, 0x01
ACCESS_ALLOWED_OBJECT, ACCESS_DENIED_OBJECT = 0x05, 0x06
INHERIT_ONLY = 0x08
CONTROL_ACCESS = 0x00000100  # ADS_RIGHT_DS_CONTROL_ACCESS
GENERIC_ALL = 0x10000000  # AD maps it when it stores an ACE; an unmapped one still grants all
OBJECT_TYPE_PRESENT, INHERITED_OBJECT_TYPE_PRESENT = 0x1, 0x2
SE_DACL_PRESENT = 0x0004

# SIDs every network logon's token holds besides the account's and its groups': Everyone,
# NETWORK, Authenticated Users (MS-DTYP 2.4.2.4).
EVERYONE = bytes([1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
NETWORK = bytes([1, 1, 0, 0, 0, 0, 0, 5, 2, 0, 0, 0])
AUTHENTICATED_USERS = bytes([1, 1, 0, 0, 0, 0, 0, 5, 11, 0, 0, 0])
LOGON_SIDS = frozenset({EVERYONE, NETWORK, AUTHENTICATED_USERS})

_HEADER = struct.Struct("<BBHIIII")  # revision, sbz1, control, owner, group, sacl, dacl
_ACL_HEADER = struct.Struct("<BBHHH")  # revision, sbz1, size, count, sbz2
_ACE_HEADER = struct.Struct("<BBH")  # type, flags, size


class MalformedDescriptor(ValueError):
    """The bytes are not a self-relative security descriptor."""


class Ace(NamedTuple):
    kind: int
    flags: int
    mask: int
    object_type: UUID | None  # object ACEs only: the right (or property) it is limited to
    sid: bytes


def _sid_at(data: bytes, offset: int) -> bytes:
    if offset + 8 > len(data):
        raise MalformedDescriptor("a SID runs past the end of its ACE")
    size = 8 + 4 * data[offset + 1]
    if offset + size > len(data):
        raise MalformedDescriptor("a SID runs past the end of its ACE")
    return data[offset : offset + size]


def _ace(kind: int, flags: int, body: bytes) -> Ace | None:
    """The ACE whose bytes after its header are ``body``; None for a kind this check ignores
    (audit, alarm, callback and other ACEs grant and deny nothing here)."""
    if len(body) < 4:
        raise MalformedDescriptor("an ACE shorter than its access mask")
    mask = struct.unpack_from("<I", body)[0]
    if kind in (ACCESS_ALLOWED, ACCESS_DENIED):
        return Ace(kind, flags, mask, None, _sid_at(body, 4))
    if kind not in (ACCESS_ALLOWED_OBJECT, ACCESS_DENIED_OBJECT):
        return None
    if len(body) < 8:
        raise MalformedDescriptor("an object ACE without its flags")
    present = struct.unpack_from("<I", body, 4)[0]
    position, object_type = 8, None
    if present & OBJECT_TYPE_PRESENT:
        if position + 16 > len(body):
            raise MalformedDescriptor("an object ACE's ObjectType runs past its end")
        object_type = UUID(bytes_le=body[position : position + 16])
        position += 16
    if present & INHERITED_OBJECT_TYPE_PRESENT:
        position += 16  # which child classes inherit it: nothing to this object's access
    return Ace(kind, flags, mask, object_type, _sid_at(body, position))


def dacl(descriptor: bytes) -> list[Ace] | None:
    """The DACL's ACEs in stored order; None when the descriptor has no DACL."""
    if len(descriptor) < _HEADER.size:
        raise MalformedDescriptor(f"{len(descriptor)} bytes, less than a descriptor's header")
    control, offset = _HEADER.unpack_from(descriptor)[2], _HEADER.unpack_from(descriptor)[6]
    if not control & SE_DACL_PRESENT or not offset:
        return None
    if offset + _ACL_HEADER.size > len(descriptor):
        raise MalformedDescriptor("the DACL begins past the end")
    count = _ACL_HEADER.unpack_from(descriptor, offset)[3]
    return list(_aces(descriptor, offset + _ACL_HEADER.size, count))


def _aces(descriptor: bytes, position: int, count: int) -> Iterator[Ace]:
    for _ in range(count):
        if position + _ACE_HEADER.size > len(descriptor):
            raise MalformedDescriptor("an ACE begins past the end")
        kind, flags, size = _ACE_HEADER.unpack_from(descriptor, position)
        if size < _ACE_HEADER.size or position + size > len(descriptor):
            raise MalformedDescriptor("an ACE's size runs past the end")
        found = _ace(kind, flags, descriptor[position + _ACE_HEADER.size : position + size])
        if found is not None:
            yield found
        position += size


def _covers(ace: Ace, right: UUID) -> bool:
    return bool(ace.mask & (CONTROL_ACCESS | GENERIC_ALL)) and ace.object_type in (None, right)


def holds(descriptor: bytes, token: Collection[bytes], right: UUID) -> bool:
    """Whether a token holding these SIDs (binary) is granted ``right`` by ``descriptor``."""
    aces = dacl(descriptor)
    if aces is None:
        return True
    for ace in aces:
        if ace.flags & INHERIT_ONLY or ace.sid not in token or not _covers(ace, right):
            continue
        return ace.kind in (ACCESS_ALLOWED, ACCESS_ALLOWED_OBJECT)
    return False
