"""What the adapter read from each DC, kept only as long as the DC's own change numbers vouch
for it.

A DC numbers every change it commits (``uSNChanged``), in increasing order, and says up to
which number it has committed (``highestCommittedUSN``). So what was read from a DC stays good
until the DC says otherwise: before it is used again, one search for the objects changed since
(names only, Show Deleted) tells what to forget. Per DC this holds:
- live objects as last read (full entries), each with its parent container's objectGUID;
- the objects deleted there (a tombstone proves the delete on that DC), and the tombstones
  read in full;
- the objects at or below each container searched for descendants (their GUIDs and names).

AD does not renumber an object when an ancestor is renamed or moved, so a held name can go
stale without the object showing as changed. Each held object's parent container is therefore
remembered by GUID (``parentGUID``); when the change search shows live objects this adapter
never read that could be such an ancestor, the containers are looked up by GUID and whatever
is held below one that is no longer where it was is forgotten. Users, computers, groups and
contacts never could: what is held is users and what lies below them, and in AD's schema none
of those classes may hold a user (their possible superiors are domains, OUs and containers). So
the changes a busy domain makes all day (logons, passwords, group members) cost no check.

A write through the adapter forgets what it made stale at once. Held entries are the objects'
state as of the DC's ``since`` number; :meth:`Seen.refresh` moves it on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from remediate.dn import is_within_normalized, normalize, parent_dn
from remediate.model import DirectoryEntry

# Never above a user in AD's schema (lowercase, most specific class): a change to one never
# moves what is held. Anything else never read here (an OU, a container, a class this list does
# not name, an answer without its class) may be an ancestor of what is held.
NEVER_ABOVE_A_USER = frozenset(
    {
        "user",
        "computer",
        "inetorgperson",
        "contact",
        "group",
        "foreignsecurityprincipal",
        "msds-managedserviceaccount",
        "msds-groupmanagedserviceaccount",
    }
)


@dataclass
class _View:
    """What is held for one DC, good as of its change number ``since``."""

    since: int
    invocation: bytes | None = None  # the DC's database (invocationId): numbers are its own
    entries: dict[UUID, DirectoryEntry] = field(default_factory=dict)
    stale: dict[UUID, str] = field(default_factory=dict)  # held once, changed since: by DN
    gone: set[UUID] = field(default_factory=set)  # deleted there (a tombstone was seen)
    tombstones: dict[UUID, DirectoryEntry] = field(default_factory=dict)  # read in full
    # Per searched container (normalized DN): every live object at or below it, by GUID, with
    # its normalized DN.
    listings: dict[str, dict[UUID, str]] = field(default_factory=dict)
    # The GUID of each container (normalized DN) a held object or listed name lies in.
    containers: dict[str, UUID] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.entries or self.stale or self.gone or self.listings)

    def drop_within(self, scope: str) -> None:
        """Forget every live object, listing and container at or below ``scope``."""
        for guid in [
            g for g, e in self.entries.items() if is_within_normalized(normalize(e.dn), scope)
        ]:
            self.make_stale(guid)
        for container in [c for c in self.listings if is_within_normalized(c, scope)]:
            del self.listings[container]
        for container in [c for c in self.containers if is_within_normalized(c, scope)]:
            del self.containers[container]

    def make_stale(self, guid: UUID) -> None:
        held = self.entries.pop(guid, None)
        if held is not None:
            self.stale[guid] = held.dn

    def drop_listings_with(self, guid: UUID) -> None:
        for container in [c for c, members in self.listings.items() if guid in members]:
            del self.listings[container]

    def note_container(self, dn: str, parent: UUID | None) -> None:
        """``dn`` (normalized) lies in a container whose GUID is ``parent``. A different GUID
        at that name than before: the old container moved away with what was held below it."""
        if parent is None:
            return
        container = parent_dn(dn)
        known = self.containers.get(container)
        if known is not None and known != parent:
            self.drop_within(container)
        self.containers[container] = parent


class Seen:
    def __init__(self) -> None:
        self._views: dict[str, _View] = {}
        self._names: dict[UUID, str] = {}  # each object's last-known DN, on any DC

    def watch(self, dc: str, highest_committed_usn: int, invocation: bytes | None = None) -> None:
        """A connection to ``dc`` opened: what is read from now on is good as of this number
        (what is already held keeps its own, unless the DC's database is another one now: a
        new ``invocation`` ID, as after a restore from backup, whose numbers went back)."""
        view = self._views.get(dc)
        if view is None or view.empty or view.invocation != invocation:
            self._views[dc] = _View(highest_committed_usn, invocation)

    def due(self, dc: str) -> int | None:
        """The change number to search for changes after, or None when nothing is held."""
        view = self._views.get(dc)
        return None if view is None or view.empty else view.since

    def record(self, dc: str, entries: Iterable[tuple[DirectoryEntry, UUID | None]]) -> None:
        """Full entries just read from ``dc``, each with its parent container's GUID."""
        view = self._views.get(dc)
        for entry, parent in entries:
            if entry.deleted:
                self._names.pop(entry.guid, None)
                if view is not None:
                    view.entries.pop(entry.guid, None)
                    view.stale.pop(entry.guid, None)
                    view.gone.add(entry.guid)
                    view.tombstones[entry.guid] = entry
                continue
            self._names[entry.guid] = entry.dn
            if view is not None:
                view.note_container(normalize(entry.dn), parent)
                view.entries[entry.guid] = entry
                view.stale.pop(entry.guid, None)
                view.gone.discard(entry.guid)
                view.tombstones.pop(entry.guid, None)

    def record_listing(
        self, dc: str, container: str, names: Iterable[tuple[UUID, str, UUID | None]]
    ) -> dict[UUID, str]:
        """The live objects at or below ``container`` (GUID, DN, parent GUID), just searched.
        Returns them by GUID (normalized DNs)."""
        view = self._views.get(dc)
        listing: dict[UUID, str] = {}
        for guid, dn, parent in names:
            normal = normalize(dn)
            listing[guid] = normal
            self._names[guid] = dn
            if view is not None:
                view.note_container(normal, parent)
        if view is not None:
            view.listings[normalize(container)] = listing
        return listing

    def listing(self, dc: str, container: str) -> dict[UUID, str] | None:
        view = self._views.get(dc)
        return None if view is None else view.listings.get(normalize(container))

    def name(self, guid: UUID) -> str | None:
        return self._names.get(guid)

    def entry(self, dc: str, guid: UUID, *, include_deleted: bool) -> DirectoryEntry | None:
        view = self._views.get(dc)
        if view is None:
            return None
        found = view.entries.get(guid)
        if found is None and include_deleted:
            found = view.tombstones.get(guid)
        return found

    def knows(self, dc: str, guid: UUID, *, include_deleted: bool) -> bool:
        """Whether ``guid``'s state on ``dc`` is held: live, or deleted (``include_deleted``:
        its tombstone read in full)."""
        view = self._views.get(dc)
        return view is not None and (
            guid in view.entries
            or (guid in view.tombstones if include_deleted else guid in view.gone)
        )

    def held_within(self, dc: str, scope_dn: str) -> tuple[list[DirectoryEntry], list[UUID]]:
        """The live objects held at or below ``scope_dn``, and those once held there that
        changed since (to read again)."""
        view = self._views.get(dc)
        if view is None:
            return [], []
        scope = normalize(scope_dn)
        return [
            entry
            for entry in view.entries.values()
            if is_within_normalized(normalize(entry.dn), scope)
        ], [guid for guid, dn in view.stale.items() if is_within_normalized(normalize(dn), scope)]

    def refresh(self, dc: str, changed: Iterable[tuple[DirectoryEntry, UUID | None]]) -> bool:
        """Objects changed on ``dc`` since :meth:`due` (names only: no attributes), tombstones
        included, each with its parent's GUID: what they made stale is forgotten. Returns
        whether live objects never read here were among them that could be an ancestor of what
        is held, renamed or moved (see :meth:`moved`)."""
        view = self._views[dc]
        strangers = False
        for change, parent in changed:
            guid = change.guid
            held = view.entries.pop(guid, None)
            if change.deleted:
                self._names.pop(guid, None)
                view.stale.pop(guid, None)
                view.gone.add(guid)
                tombstone = view.tombstones.pop(guid, None)
                if tombstone is not None and tombstone.usn_changed == change.usn_changed:
                    view.tombstones[guid] = tombstone
                for members in view.listings.values():
                    members.pop(guid, None)
                continue
            view.gone.discard(guid)  # brought back
            view.tombstones.pop(guid, None)
            normal = normalize(change.dn)
            old = self._names.get(guid)
            if old is None:
                # Not named here: if the container check that follows fails, the same change
                # shows again next time, and so the check is made again.
                strangers = strangers or change.object_class.lower() not in NEVER_ABOVE_A_USER
            else:
                if normalize(old) != normal:  # renamed or moved: so is all below it
                    view.drop_within(normalize(old))
                self._names[guid] = change.dn
            if held is not None and held.usn_changed == change.usn_changed:
                view.entries[guid] = held  # changed before it was read: still good
            elif held is not None:
                view.stale[guid] = change.dn
            if held is not None or old is not None:
                view.note_container(normal, parent)
            for container, members in list(view.listings.items()):
                inside = is_within_normalized(normal, container)
                if inside != (guid in members) or (inside and members[guid] != normal):
                    del view.listings[container]
        return strangers

    def containers(self, dc: str) -> dict[str, UUID]:
        view = self._views.get(dc)
        return {} if view is None else dict(view.containers)

    def moved(self, dc: str, containers: Iterable[str]) -> None:
        """These containers (normalized DNs) are no longer where they were."""
        view = self._views[dc]
        for container in containers:
            view.drop_within(container)

    def advance(self, dc: str, highest_committed_usn: int) -> None:
        self._views[dc].since = highest_committed_usn

    def changed(self, dc: str, guid: UUID) -> None:
        """The object was written on ``dc``: its entry is stale (its name still a good guess)."""
        view = self._views.get(dc)
        if view is not None:
            view.make_stale(guid)

    def deleted(self, dc: str, guid: UUID, *, tree: bool) -> None:
        """The DC confirmed a delete of the object (``tree``: with everything below it): none
        of it is held as live there any more; its tombstone shows in the next change search."""
        view = self._views.get(dc)
        name = self._names.pop(guid, None)
        if view is None:
            return
        view.entries.pop(guid, None)
        view.stale.pop(guid, None)
        for members in view.listings.values():
            members.pop(guid, None)
        if tree and name is not None:
            gone = normalize(name)
            view.drop_within(gone)
            for members in view.listings.values():
                for below in [g for g, dn in members.items() if is_within_normalized(dn, gone)]:
                    del members[below]

    def unsure(self, dc: str, guid: UUID) -> None:
        """A write to the object failed without a clear answer: whether it (or what lies
        below it) is still there is to be asked again."""
        view = self._views.get(dc)
        if view is not None:
            view.make_stale(guid)
            view.drop_listings_with(guid)
