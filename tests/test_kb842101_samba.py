"""kb842101's directory part end to end on a real Samba AD DC: discover, delete the selected users
(Tree Delete for those with children) after LDIF backups, wait for replication, verify. The
Exchange side is an organisation without servers (no mailboxes); the plan is rehearsed on a
snapshot of the DC's objects within the scope."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from directory_backends import SAMBA_DC_NAME, SambaBackend, samba_directory, unique
from kb_support import journal, ldif_backups, run_dir
from samba_dc import SambaDC

from remediate import Engine, get_playbook
from remediate.adapters.ldap import LdapDirectory
from remediate.adapters.ldap.snapshot import rehearsal_world
from remediate.adapters.world import LiveWorld
from remediate.dn import normalize
from remediate.engine.runner import EXIT_DONE
from remediate.errors import Refused
from remediate.fakes import load_world, save_world
from remediate.model import DirectoryEntry, UserQuery, iso
from remediate.testing import apply_confirmed, change_keys

pytestmark = pytest.mark.samba


@pytest.fixture
def directory(samba_dc: SambaDC) -> Iterator[LdapDirectory]:
    directory = samba_directory(samba_dc)
    yield directory
    directory.close()


def world_on(directory: LdapDirectory, scope: str) -> LiveWorld:
    stub = rehearsal_world(directory, scope)  # its Exchange has no servers: no mailboxes
    return LiveWorld(directory, stub.exchange, rehearse=lambda: rehearsal_world(directory, scope))


def user(backend: SambaBackend, parent: str, name: str) -> DirectoryEntry:
    return backend.add(parent, name, "user", {"sAMAccountName": unique("k")})


def test_kb842101_deletes_the_selected_users_and_their_children_on_samba(
    samba_dc: SambaDC, directory: LdapDirectory, engine: Engine
) -> None:
    backend = SambaBackend(samba_dc, directory)
    scope = backend.add(samba_dc.base_dn, unique("kb-"), "organizationalUnit").dn
    migrated = backend.add(scope, "Migrated", "organizationalUnit").dn
    elsewhere = backend.add(scope, "Elsewhere", "organizationalUnit").dn
    before_window = user(backend, migrated, "Early Bird")
    backend.next_second()
    plain = user(backend, migrated, 'O\'Brien, "Bob" *(x)')
    with_children = user(backend, migrated, "Ann Lee")
    devices = backend.add(with_children.dn, "ExchangeActiveSyncDevices", "container")
    phone = backend.add(devices.dn, "Phone 1", "container")
    outside = user(backend, elsewhere, "Not Selected")
    world = world_on(directory, scope)
    parameters = {
        "ou": migrated,
        "created_after": iso(plain.when_created),
        "created_before": iso(phone.when_created + timedelta(seconds=1)),
    }
    playbook = get_playbook("kb842101")

    planned = engine.plan(playbook, world, parameters)
    applied = apply_confirmed(engine, playbook, world, parameters)

    assert applied.exit_code == EXIT_DONE, applied.error
    discovered = [r for r in journal(run_dir(applied)) if r["event"] == "run.discovered"]
    assert [record["writable_dc"] for record in discovered] == [SAMBA_DC_NAME]  # pinned
    assert change_keys(applied.changes) == change_keys(planned.changes)
    deletes = [c for c in applied.changes if c.step == "delete-ad-user"]
    assert sorted(c.action for c in deletes) == ["delete", "tree-delete"]
    gone = [plain.guid, with_children.guid, devices.guid, phone.guid]
    kept = [before_window.guid, outside.guid]
    live = directory.read([*gone, *kept], SAMBA_DC_NAME)
    assert set(live) == set(kept)
    tombstones = directory.read(gone, SAMBA_DC_NAME, include_deleted=True)
    assert set(tombstones) == set(gone)
    assert all(entry.deleted for entry in tombstones.values())
    backed_up = {
        normalize(record.dn): UUID(bytes_le=record.values("objectGUID")[0])
        for record in ldif_backups(run_dir(applied))
    }
    assert backed_up == {
        normalize(entry.dn): entry.guid for entry in (plain, with_children, devices, phone)
    }

    again = apply_confirmed(engine, playbook, world, parameters)
    assert again.exit_code == EXIT_DONE
    assert [c for c in again.changes if c.step == "delete-ad-user"] == []


def test_kb842101_refuses_a_protected_user_on_samba_before_any_change(
    samba_dc: SambaDC, directory: LdapDirectory, engine: Engine
) -> None:
    backend = SambaBackend(samba_dc, directory)
    scope = backend.add(samba_dc.base_dn, unique("kbp-"), "organizationalUnit").dn
    first = user(backend, scope, "First")
    guarded = user(backend, scope, "Guarded")
    backend.protect(guarded)
    world = world_on(directory, scope)
    window = {
        "created_after": iso(first.when_created),
        "created_before": iso(guarded.when_created + timedelta(seconds=1)),
    }
    with pytest.raises(Refused, match="protected from accidental deletion"):
        apply_confirmed(
            engine, get_playbook("kb842101"), world, {"ou": scope, **window}
        ).raise_for_stop()
    assert set(directory.read([first.guid, guarded.guid], SAMBA_DC_NAME)) == {
        first.guid,
        guarded.guid,
    }


def test_a_snapshot_of_a_scope_is_a_world_file_with_the_same_objects(
    samba_dc: SambaDC, directory: LdapDirectory, tmp_path: Path
) -> None:
    backend = SambaBackend(samba_dc, directory)
    scope = backend.add(samba_dc.base_dn, unique("snap-"), "organizationalUnit").dn
    mailbox = uuid4()
    ann = backend.add(
        scope,
        'Ann "Quotes", Lee',
        "user",
        {"sAMAccountName": unique("s"), "msExchMailboxGuid": str(mailbox), "mailNickname": "ann"},
    )
    backend.protect(ann)
    child = backend.add(ann.dn, "Devices", "container")
    path = tmp_path / "world.json"
    save_world(rehearsal_world(directory, scope), path)
    loaded = load_world(path).directory
    copies = loaded.read([ann.guid, child.guid], SAMBA_DC_NAME)
    assert set(copies) == {ann.guid, child.guid}
    assert copies[ann.guid].dn == ann.dn
    assert copies[ann.guid].mailbox_guid == mailbox
    assert copies[ann.guid].protected
    assert copies[ann.guid].when_created == ann.when_created
    assert [e.guid for e in loaded.descendants([ann.guid], SAMBA_DC_NAME)[ann.guid]] == [child.guid]
    outside = loaded.find_users(UserQuery(sam_account_names=frozenset({"Administrator"})))
    assert outside == []  # only the scope was read
