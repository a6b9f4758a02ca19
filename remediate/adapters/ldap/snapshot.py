"""The directory part of a fake world read from a real directory, within a scope: what a plan
is rehearsed on when the real directory is an LDAP server."""

from __future__ import annotations

from datetime import UTC, datetime

from remediate.fakes import FakeDirectory, FakeWorld

from .directory import LdapDirectory


def copy_into(source: LdapDirectory, target: FakeDirectory, scope_dn: str) -> int:
    """Add the live objects within ``scope_dn`` (as the pinned DC sees it) to ``target``, same
    GUIDs, names, classes, times and attributes, as already replicated: the objects the source
    holds there (read by a discovery just before: what a rehearsal of it touches; see
    :meth:`LdapDirectory.held_within`), else all of them, read now. Returns how many."""
    entries = source.held_within(scope_dn) or source.entries_within(scope_dn, source.writable_dc())
    for entry in entries:
        target.add_object(
            entry.dn,
            object_class=entry.object_class,
            guid=entry.guid,
            when_created=entry.when_created,
            when_changed=entry.when_changed,
            protected=entry.protected,
            attributes=entry.attributes,
            usn_changed=entry.usn_changed,
            binary=entry.binary,
        )
    return len(entries)


def rehearsal_world(source: LdapDirectory, scope_dn: str) -> FakeWorld:
    """A fake world at the current time: the source's DCs (no replication delay), the live
    objects within ``scope_dn`` (see :func:`copy_into`), and an Exchange organisation without
    servers."""
    world = FakeWorld.create(
        domain=source.domain,
        base_dn=source.base_dn,
        dcs=[(dc, 0.0) for dc in source.domain_controllers()],
        now=datetime.now(UTC),
        writable_dc=source.writable_dc(),
    )
    copy_into(source, world.directory, scope_dn)
    return world
