"""One domain controller's copy of the domain, with the indexes its lookups need.

Entries are never mutated once placed here (copy-on-write): a view can share entry objects with
the other DCs' views and with rehearsal copies, which keeps 100,000 users on three DCs cheap.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from dataclasses import replace
from typing import Generic, NamedTuple, TypeVar
from uuid import UUID

from remediate.dn import is_within_normalized, normalize, parent_dn, split_rdns
from remediate.model import DirectoryEntry

K = TypeVar("K", bound=Hashable)


class _Claims(Generic[K]):
    """Which object claims a key (a mailbox GUID, a legacyExchangeDN). Several objects may claim
    one key (AD allows it; Exchange then logs "ambiguous"): all are kept, so removing one claim
    never loses another, and the answer stays deterministic (the smallest GUID wins)."""

    __slots__ = ("_first", "_shared")

    def __init__(
        self, first: dict[K, UUID] | None = None, shared: dict[K, set[UUID]] | None = None
    ):
        self._first: dict[K, UUID] = first if first is not None else {}
        self._shared: dict[K, set[UUID]] = shared if shared is not None else {}

    def get(self, key: K) -> UUID | None:
        return self._first.get(key)

    def add(self, key: K, guid: UUID) -> None:
        holder = self._first.setdefault(key, guid)
        if holder != guid:
            group = self._shared.setdefault(key, {holder})
            group.add(guid)
            self._first[key] = min(group)

    def remove(self, key: K, guid: UUID) -> None:
        group = self._shared.get(key)
        if group is None:
            if self._first.get(key) == guid:
                del self._first[key]
            return
        group.discard(guid)
        self._first[key] = min(group)
        if len(group) == 1:
            del self._shared[key]

    def copy(self) -> _Claims[K]:
        return _Claims(dict(self._first), {key: set(group) for key, group in self._shared.items()})


class IndexKeys(NamedTuple):
    """Where a live entry is filed: normalized parent DN, mailbox GUID, lower-cased legacy DN."""

    parent: str
    mailbox: UUID | None
    legacy_dn: str | None


def index_keys(entry: DirectoryEntry, normal_dn: str | None = None) -> IndexKeys:
    """``normal_dn``: ``normalize(entry.dn)`` if already known. Raises ValueError for a DN that
    does not parse or a msExchMailboxGuid that is no UUID."""
    legacy = entry.get("legacyExchangeDN")
    parent = parent_dn(normal_dn if normal_dn is not None else normalize(entry.dn))
    return IndexKeys(parent, entry.mailbox_guid, legacy.lower() if legacy else None)


class DcView:
    """What one DC holds. ``delay`` is how long a change made on another DC takes to reach it."""

    __slots__ = (
        "_by_legacy_dn",
        "_by_mailbox",
        "_children",
        "_entries",
        "_versions",
        "delay",
        "name",
        "usn",
    )

    def __init__(self, name: str, delay: float) -> None:
        self.name = name
        self.delay = delay
        self.usn = 0  # highestCommittedUSN: the last uSNChanged this DC handed out
        self._entries: dict[UUID, DirectoryEntry] = {}
        # The replication version of each entry changed since load (absent: 0), so a change
        # that arrives late never overwrites a newer one.
        self._versions: dict[UUID, int] = {}
        self._children: dict[str, set[UUID]] = {}
        self._by_mailbox: _Claims[UUID] = _Claims()
        self._by_legacy_dn: _Claims[str] = _Claims()

    def copy(self, name: str | None = None, delay: float | None = None) -> DcView:
        """An independent copy (under another DC's name and delay, if given). Cheap: the
        dictionaries are copied with their stored hashes, entries are shared."""
        twin = DcView(self.name if name is None else name, self.delay if delay is None else delay)
        twin.usn = self.usn
        twin._entries = dict(self._entries)
        twin._versions = dict(self._versions)
        twin._children = {key: set(guids) for key, guids in self._children.items()}
        twin._by_mailbox = self._by_mailbox.copy()
        twin._by_legacy_dn = self._by_legacy_dn.copy()
        return twin

    # Reads.

    def get(self, guid: UUID) -> DirectoryEntry | None:
        """The entry, tombstone or not."""
        return self._entries.get(guid)

    def live(self, guid: UUID) -> DirectoryEntry | None:
        entry = self._entries.get(guid)
        return None if entry is None or entry.deleted else entry

    def entries(self) -> Iterable[DirectoryEntry]:
        """Every entry, tombstones included, in the order they were first placed."""
        return self._entries.values()

    def mailbox_owner(self, mailbox: UUID) -> UUID | None:
        """The live object whose msExchMailboxGuid names ``mailbox``."""
        return self._by_mailbox.get(mailbox)

    def by_legacy_dn(self, legacy_dn: str) -> DirectoryEntry | None:
        """The live object with this legacyExchangeDN (case-insensitive)."""
        guid = self._by_legacy_dn.get(legacy_dn.lower())
        return None if guid is None else self._entries[guid]

    def within(self, base: str) -> Iterator[DirectoryEntry]:
        """Live entries at or below the normalized DN ``base``."""
        for key, guids in self._children.items():
            if is_within_normalized(key, base):
                yield from (self._entries[guid] for guid in guids)
        for guid in self._children.get(parent_dn(base), ()):
            if normalize(self._entries[guid].dn) == base:
                yield self._entries[guid]

    def below(self, entry: DirectoryEntry) -> list[DirectoryEntry]:
        """Live entries strictly below ``entry``, deepest first (the order Tree Delete uses)."""
        found: list[DirectoryEntry] = []
        pending = [normalize(entry.dn)]
        while pending:
            for guid in self._children.get(pending.pop(), ()):
                child = self._entries[guid]
                found.append(child)
                pending.append(normalize(child.dn))
        found.sort(key=lambda item: (-len(split_rdns(item.dn)), normalize(item.dn)))
        return found

    def accepts(self, entry: DirectoryEntry, version: int) -> bool:
        """Whether a replicated change would land: a deletion always wins and is final (a
        modification made elsewhere meanwhile never brings the object back); otherwise the
        newer change wins, whatever order they arrive in."""
        current = self._entries.get(entry.guid)
        if current is None:
            return True
        if entry.deleted != current.deleted:
            return entry.deleted
        return version > self._versions.get(entry.guid, 0)

    # Writes.

    def place(self, entry: DirectoryEntry, keys: IndexKeys | None = None) -> None:
        """Put ``entry`` here as loaded, keeping its uSNChanged (``keys``: precomputed, to share
        the work between DCs)."""
        self._unfile(self._entries.get(entry.guid))
        self._entries[entry.guid] = entry
        self._file(entry, keys)
        self.usn = max(self.usn, entry.usn_changed)

    def land(self, entry: DirectoryEntry, version: int, keys: IndexKeys | None = None) -> bool:
        """Apply a change (made here or replicated): the entry gets this DC's next uSNChanged
        (``keys``: where it is filed, if already known)."""
        if not self.accepts(entry, version):
            return False
        self.usn += 1
        self._unfile(self._entries.get(entry.guid))
        stored = replace(entry, usn_changed=self.usn)
        self._entries[entry.guid] = stored
        self._versions[entry.guid] = version
        self._file(stored, keys)
        return True

    def _file(self, entry: DirectoryEntry, keys: IndexKeys | None) -> None:
        if entry.deleted:
            return
        keys = keys or index_keys(entry)
        self._children.setdefault(keys.parent, set()).add(entry.guid)
        if keys.mailbox is not None:
            self._by_mailbox.add(keys.mailbox, entry.guid)
        if keys.legacy_dn is not None:
            self._by_legacy_dn.add(keys.legacy_dn, entry.guid)

    def _unfile(self, entry: DirectoryEntry | None) -> None:
        if entry is None or entry.deleted:
            return
        keys = index_keys(entry)
        siblings = self._children.get(keys.parent)
        if siblings is not None:
            siblings.discard(entry.guid)
            if not siblings:
                del self._children[keys.parent]
        if keys.mailbox is not None:
            self._by_mailbox.remove(keys.mailbox, entry.guid)
        if keys.legacy_dn is not None:
            self._by_legacy_dn.remove(keys.legacy_dn, entry.guid)
