"""Security identifiers (MS-DTYP 2.4.2.2): AD holds them as bytes; people and the selection
rules read them as ``S-1-5-21-...``."""

from __future__ import annotations


def sid_text(value: bytes) -> str:
    """A binary SID as S-R-I-S...: revision (1 byte), sub-authority count (1 byte), identifier
    authority (6 bytes, big-endian), then each sub-authority (4 bytes, little-endian)."""
    if len(value) < 8 or value[0] != 1 or len(value) != 8 + 4 * value[1]:
        raise ValueError("not a SID")
    authority = int.from_bytes(value[2:8], "big")
    subs = [int.from_bytes(value[8 + 4 * i : 12 + 4 * i], "little") for i in range(value[1])]
    return "-".join(["S", "1", str(authority), *map(str, subs)])
