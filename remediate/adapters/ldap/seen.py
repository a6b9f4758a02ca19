"""What the adapter read lately: each live object's last-read entry and name, by objectGUID.

Two uses, neither trusted blindly:
- the entries read since the last rehearsal (discovery's, moments before) are what a rehearsal
  of them is built from, instead of reading them all again: a DC numbers every change it
  commits (uSNChanged) in increasing order, so one search for the changes numbered above the
  DC's highestCommittedUSN from before the reads tells which of them to read again;
- an object's last-known DN tells :meth:`LdapDirectory.descendants` which container to search;
  the search itself then says where the object is now (or that it is not there).
A write through the adapter forgets what it made stale.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from remediate.dn import is_within, is_within_normalized, normalize
from remediate.model import DirectoryEntry


class Seen:
    def __init__(self) -> None:
        self._entries: dict[UUID, tuple[str, DirectoryEntry]] = {}  # with the DC it came from
        self._names: dict[UUID, str] = {}
        self._since: dict[str, int] = {}

    def watch(self, dc: str, highest_committed_usn: int) -> None:
        """Entries read from ``dc`` from now on are checked against changes after this USN
        (those read before, under an older one, keep theirs)."""
        older = self._since.get(dc)
        pending = older is not None and any(source == dc for source, _ in self._entries.values())
        self._since[dc] = older if pending and older is not None else highest_committed_usn

    def record(self, dc: str, entries: Iterable[DirectoryEntry]) -> None:
        watched = dc in self._since
        for entry in entries:
            if entry.deleted:
                self.forget(entry.guid)
            else:
                if watched:
                    self._entries[entry.guid] = (dc, entry)
                self._names[entry.guid] = entry.dn

    def name(self, guid: UUID) -> str | None:
        return self._names.get(guid)

    def changed(self, guid: UUID) -> None:
        """The object was written: its entry is stale (its name is still a good guess)."""
        self._entries.pop(guid, None)

    def forget(self, guid: UUID, *, below: bool = False) -> None:
        """The object is gone (``below``: with everything under it, a Tree Delete)."""
        self._entries.pop(guid, None)
        name = self._names.pop(guid, None)
        if below and name is not None:
            gone = [g for g, (_, entry) in self._entries.items() if is_within(entry.dn, name)]
            for child in gone:
                self._entries.pop(child, None)
                self._names.pop(child, None)

    def take_within(self, scope_dn: str, dc: str) -> tuple[list[DirectoryEntry], int]:
        """The entries read from ``dc`` at or below ``scope_dn`` since the last take, and the
        USN they are to be checked from; forgets all entries (names are kept)."""
        scope = normalize(scope_dn)
        taken = [
            entry for source, entry in self._entries.values()
            if source == dc and is_within_normalized(normalize(entry.dn), scope)
        ]
        self._entries.clear()
        return taken, self._since.get(dc, 0)
