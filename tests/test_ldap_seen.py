"""What the ldap3 adapter holds per DC (remediate/adapters/ldap/seen.py), without a DC: the
bookkeeping the Samba tests in test_ldap_reads.py rely on."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from remediate.adapters.ldap.seen import Seen
from remediate.model import DirectoryEntry

DC = "dc1"
OU = "OU=Staff,DC=corp,DC=example"
EPOCH = datetime(2026, 11, 21, tzinfo=UTC)


def entry(
    dn: str,
    usn: int,
    guid: UUID | None = None,
    *,
    deleted: bool = False,
    object_class: str = "user",
) -> DirectoryEntry:
    return DirectoryEntry(
        guid=guid or uuid4(),
        dn=dn,
        object_class=object_class,
        when_created=EPOCH,
        when_changed=EPOCH,
        usn_changed=usn,
        deleted=deleted,
    )


def holding(*entries: DirectoryEntry, container: UUID | None = None) -> Seen:
    seen = Seen()
    seen.watch(DC, 100)
    seen.record(DC, [(e, container) for e in entries])
    return seen


def test_a_change_to_an_object_never_read_is_reported_until_it_is_checked() -> None:
    ann = entry(f"CN=Ann,{OU}", 90)
    seen = holding(ann)
    stranger = entry("OU=Elsewhere,DC=corp,DC=example", 101, object_class="organizationalUnit")

    assert seen.refresh(DC, [(stranger, None)])
    # The container check failed (say): the same change comes again, and is reported again.
    assert seen.refresh(DC, [(stranger, None)])
    assert seen.entry(DC, ann.guid, include_deleted=False) == ann


@pytest.mark.parametrize(
    ("object_class", "could_be_above"),
    [
        ("user", False),
        ("computer", False),
        ("group", False),
        ("contact", False),
        ("inetOrgPerson", False),
        ("foreignSecurityPrincipal", False),
        ("organizationalUnit", True),
        ("container", True),
        ("builtinDomain", True),
        ("msExchSystemObjectsContainer", True),
        ("", True),
    ],
)
def test_only_a_stranger_that_could_lie_above_a_user_asks_for_the_container_check(
    object_class: str, could_be_above: bool
) -> None:
    seen = holding(entry(f"CN=Ann,{OU}", 90))
    stranger = entry("CN=Someone,OU=Elsewhere,DC=corp,DC=example", 101, object_class=object_class)
    assert seen.refresh(DC, [(stranger, None)]) is could_be_above


def test_a_changed_entry_is_stale_and_a_tombstone_is_known_deleted() -> None:
    ann, bob = entry(f"CN=Ann,{OU}", 90), entry(f"CN=Bob,{OU}", 91)
    seen = holding(ann, bob)

    seen.refresh(
        DC,
        [
            (entry(ann.dn, 105, ann.guid), None),
            (
                entry(
                    f"CN=Bob\\0ADEL:{bob.guid},CN=Deleted Objects,DC=corp,DC=example",
                    106,
                    bob.guid,
                    deleted=True,
                ),
                None,
            ),
        ],
    )

    assert not seen.knows(DC, ann.guid, include_deleted=False)
    assert seen.held_within(DC, OU) == ([], [ann.guid])
    assert seen.knows(DC, bob.guid, include_deleted=False)  # known absent: no read needed
    assert not seen.knows(DC, bob.guid, include_deleted=True)  # its tombstone: not read yet


def test_an_unchanged_number_keeps_the_entry() -> None:
    ann = entry(f"CN=Ann,{OU}", 101)  # changed after the watch, before it was read
    seen = holding(ann)
    seen.refresh(DC, [(entry(ann.dn, 101, ann.guid), None)])
    assert seen.entry(DC, ann.guid, include_deleted=False) == ann


def test_another_container_at_the_same_name_drops_what_was_held_below_the_old_one() -> None:
    old, new = uuid4(), uuid4()
    ann = entry(f"CN=Ann,{OU}", 90)
    seen = holding(ann, container=old)

    seen.record(DC, [(entry(f"CN=Bob,{OU}", 95), new)])

    assert not seen.knows(DC, ann.guid, include_deleted=False)


def test_a_tree_delete_forgets_what_was_below_and_a_leaf_delete_only_itself() -> None:
    ann = entry(f"CN=Ann,{OU}", 90)
    devices = entry(f"CN=Devices,CN=Ann,{OU}", 91)
    bob = entry(f"CN=Bob,{OU}", 92)
    seen = holding(ann, devices, bob)
    seen.record_listing(DC, OU, [(e.guid, e.dn, None) for e in (ann, devices, bob)])

    seen.deleted(DC, bob.guid, tree=False)
    assert seen.listing(DC, OU) == {ann.guid: ann.dn.lower(), devices.guid: devices.dn.lower()}
    seen.deleted(DC, ann.guid, tree=True)
    assert seen.listing(DC, OU) == {}
    assert not seen.knows(DC, devices.guid, include_deleted=False)


def test_a_dc_restored_from_a_backup_has_what_was_held_for_it_forgotten() -> None:
    ann = entry(f"CN=Ann,{OU}", 90)
    seen = Seen()
    seen.watch(DC, 100, b"database-1")
    seen.record(DC, [(ann, None)])

    seen.watch(DC, 100, b"database-1")  # reconnected to the same database: kept
    assert seen.knows(DC, ann.guid, include_deleted=False)
    seen.watch(DC, 80, b"database-2")  # restored: its numbers went back
    assert not seen.knows(DC, ann.guid, include_deleted=False)
    assert seen.due(DC) is None
