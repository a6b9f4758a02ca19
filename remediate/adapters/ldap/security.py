""" "Protect from accidental deletion" in an object's nTSecurityDescriptor: an ACCESS_DENIED ACE
for Everyone (S-1-1-0) with DELETE and DELETE_TREE (ADUC also denies DELETE_CHILD on the parent;
removing the object's ACE is enough to delete it again). Read and written as the DACL only (the
SD flags control), in the self-relative binary form (MS-DTYP 2.4.6)."""

from __future__ import annotations

import struct
from typing import NamedTuple

SD_FLAGS_CONTROL_OID = "1.2.840.113556.1.4.801"
DACL_ONLY = b"\x30\x03\x02\x01\x04"  # BER SEQUENCE { INTEGER 4 } (DACL_SECURITY_INFORMATION)
ACCESS_DENIED = 0x01
DELETE = 0x00010000
DELETE_TREE = 0x00000040
DELETE_CHILD = 0x00000002
EVERYONE = bytes([1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])  # S-1-1-0
_HEADER = struct.Struct("<BBHIIII")  # revision, sbz1, control, owner, group, sacl, dacl
_ACL_HEADER = struct.Struct("<BBHHH")  # revision, sbz1, size, count, sbz2
_ACE_HEADER = struct.Struct("<BBH")  # type, flags, size
SE_DACL_PRESENT = 0x0004


def dacl_control() -> tuple[str, bool, bytes]:
    return (SD_FLAGS_CONTROL_OID, True, DACL_ONLY)


class Ace(NamedTuple):
    kind: int
    flags: int
    raw: bytes  # the whole ACE, header included


def _aces(descriptor: bytes) -> tuple[int, list[Ace]]:
    """The DACL's revision and ACEs (none when there is no DACL)."""
    if len(descriptor) < _HEADER.size:
        return 2, []
    dacl_offset = _HEADER.unpack_from(descriptor)[6]
    if not dacl_offset:
        return 2, []
    revision, _, _, count, _ = _ACL_HEADER.unpack_from(descriptor, dacl_offset)
    aces: list[Ace] = []
    position = dacl_offset + _ACL_HEADER.size
    for _ in range(count):
        kind, flags, size = _ACE_HEADER.unpack_from(descriptor, position)
        aces.append(Ace(kind, flags, descriptor[position : position + size]))
        position += size
    return revision, aces


def _is_deny_delete_for_everyone(ace: Ace) -> bool:
    if ace.kind != ACCESS_DENIED or len(ace.raw) < 8 + len(EVERYONE):
        return False
    mask = struct.unpack_from("<I", ace.raw, 4)[0]
    return ace.raw[8:] == EVERYONE and bool(mask & (DELETE | DELETE_TREE))


def is_protected(descriptor: bytes | None) -> bool:
    return descriptor is not None and any(map(_is_deny_delete_for_everyone, _aces(descriptor)[1]))


def _with_aces(descriptor: bytes, revision: int, aces: list[bytes]) -> bytes:
    """A DACL-only self-relative descriptor keeping ``descriptor``'s control bits."""
    body = b"".join(aces)
    acl = _ACL_HEADER.pack(revision, 0, _ACL_HEADER.size + len(body), len(aces), 0)
    control = _HEADER.unpack_from(descriptor)[2] if len(descriptor) >= _HEADER.size else 0x8000
    header = _HEADER.pack(1, 0, control | SE_DACL_PRESENT, 0, 0, 0, _HEADER.size)
    return header + acl + body


def without_protection(descriptor: bytes) -> bytes:
    revision, aces = _aces(descriptor)
    return _with_aces(
        descriptor, revision, [a.raw for a in aces if not _is_deny_delete_for_everyone(a)]
    )


def with_denied_for_everyone(descriptor: bytes, mask: int = DELETE | DELETE_TREE) -> bytes:
    """``descriptor`` with an ACCESS_DENIED ACE for Everyone first. What ADUC's "protect from
    accidental deletion" adds: ``DELETE | DELETE_TREE`` on the object and ``DELETE_CHILD`` on
    its parent (AD lets a delete through with either DELETE on the object or DELETE_CHILD on
    the parent)."""
    revision, aces = _aces(descriptor)
    deny = _ACE_HEADER.pack(ACCESS_DENIED, 0, 8 + len(EVERYONE))
    deny += struct.pack("<I", mask) + EVERYONE
    return _with_aces(descriptor, revision, [deny, *(a.raw for a in aces)])
