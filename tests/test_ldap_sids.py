"""Security identifiers as the ldap3 adapter shows them: objectSid and sIDHistory come as binary
SIDs (MS-DTYP 2.4.2.2) and are shown as Windows shows them, S-1-5-21-...; kb842101 reads the
RID of one and the presence of the other."""

from __future__ import annotations

import struct
import uuid

from remediate.adapters.ldap.entries import to_entry
from remediate.playbooks.migration_scope import never_selected
from remediate.sids import sid_text


def binary_sid(*subs: int, authority: int = 5) -> bytes:
    head = bytes([1, len(subs)]) + authority.to_bytes(6, "big")
    return head + struct.pack(f"<{len(subs)}I", *subs)


DOMAIN = (21, 1004336348, 1177238915, 682003330)


def test_a_binary_sid_reads_as_windows_shows_it() -> None:
    assert sid_text(binary_sid(*DOMAIN, 500)) == "S-1-5-21-1004336348-1177238915-682003330-500"
    assert sid_text(binary_sid(32, 544)) == "S-1-5-32-544"


def test_objectsid_and_every_sidhistory_value_are_decoded_on_a_user() -> None:
    guid = uuid.uuid4()
    raw = {
        "objectGUID": [guid.bytes_le],
        "objectClass": [b"top", b"person", b"user"],
        "whenCreated": [b"20261101100230.0Z"],
        "objectSid": [binary_sid(*DOMAIN, 1105)],
        "sIDHistory": [binary_sid(21, 1, 2, 3, 1013), binary_sid(21, 4, 5, 6, 1014)],
    }

    entry = to_entry("CN=Ann,DC=corp,DC=example", raw)

    # Kept as AD's bytes (an LDIF backup restores them byte for byte), read as Windows shows them.
    assert [sid_text(v) for v in entry.get_binary("objectSid") or ()] == [
        "S-1-5-21-1004336348-1177238915-682003330-1105"
    ]
    assert [sid_text(v) for v in entry.get_binary("sIDHistory") or ()] == [
        "S-1-5-21-1-2-3-1013",
        "S-1-5-21-4-5-6-1014",
    ]
    reason = never_selected(entry)
    assert reason is not None and "sIDHistory (S-1-5-21-1-2-3-1013)" in reason
