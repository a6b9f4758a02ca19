"""LDIF (RFC 2849) for backups of AD objects before they are deleted or stripped."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from remediate.model import DirectoryEntry

_SAFE_INIT = set(range(0x01, 0x80)) - {0x0A, 0x0D, 0x20, 0x3A, 0x3C}
_SAFE = set(range(0x01, 0x80)) - {0x0A, 0x0D}


def _is_safe(value: bytes) -> bool:
    if not value:
        return True
    return value[0] in _SAFE_INIT and value[-1] != 0x20 and all(b in _SAFE for b in value)


def _line(name: str, value: str | bytes) -> str:
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    if isinstance(value, str) and _is_safe(raw):
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(raw).decode('ascii')}"


def _generalized_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%d%H%M%S.0Z")


def entry_to_ldif(entry: DirectoryEntry) -> str:
    """One entry as an LDIF record: objectGUID in its binary (little-endian) form."""
    lines = [
        _line("dn", entry.dn),
        _line("objectClass", entry.object_class),
        _line("objectGUID", entry.guid.bytes_le),
        _line("whenCreated", _generalized_time(entry.when_created)),
        _line("whenChanged", _generalized_time(entry.when_changed)),
        _line("uSNChanged", str(entry.usn_changed)),
    ]
    for name in sorted(entry.attributes, key=str.lower):
        value = entry.attributes[name]
        for single in value if isinstance(value, list) else [value]:
            lines.append(_line(name, single))
    return "\n".join(lines) + "\n"


def entries_to_ldif(entries: Iterable[DirectoryEntry]) -> str:
    return "".join(ldif_pieces(entries))


def ldif_pieces(entries: Iterable[DirectoryEntry]) -> Iterator[str]:
    """The LDIF of ``entries`` a piece at a time, so a backup of a batch of 100,000 users is
    never one string (nor a list of them) in memory."""
    yield "version: 1\n\n"
    for index, entry in enumerate(entries):
        yield "\n" + entry_to_ldif(entry) if index else entry_to_ldif(entry)
