"""An in-memory Active Directory domain implementing the ``Directory`` port.

Several DCs each hold their own view. A change lands on the DC it was made on at once and on
every other DC after that DC's ``replication_delay_s``. Port writes go to the pinned writable DC;
the fake Exchange writes through its servers' own DCs with :meth:`FakeDirectory.write`.

A DC may be named a *partial replica*: a global catalog of another domain of the forest, which
holds a read-only copy of this domain's partition with the partial attribute set only ("The
global catalog contains a partial replica of every naming context in the directory",
learn.microsoft.com/windows/win32/ad/global-catalog; the NC is in its nTDSDSA's
hasPartialReplicaNCs, MS-ADA1 2.290, not hasMasterNCs). It is not one of the domain's DCs, so
``domain_controllers`` leaves it out and a write through it is refused; changes reach it
after its replication delay like any other; an Exchange server can read recipients through it
(``read_catalog``). The fake keeps every attribute there: those the playbooks read of a user
(msExchMailboxGuid, homeMDB, legacyExchangeDN, proxyAddresses, mail) are all in the partial
attribute set, since Exchange's address lookups go to global catalogs.

Entries returned to callers are the stored objects, shared between DCs: treat them as read-only.
Conflicting changes made on two DCs resolve whole-object (the later change wins everywhere; a
deletion is final), where AD would merge attribute by attribute.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import ClassVar, NamedTuple
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from remediate.dn import escape_rdn_value, normalize, parent_dn, rdn_type, rdn_value
from remediate.errors import PermanentError
from remediate.model import (
    GUID_ATTRIBUTES,
    NO_BINARY,
    AttrValue,
    DirectoryEntry,
    UserQuery,
    WriteValue,
)

from .faults import Faults, Gate
from .replica import DcView, IndexKeys, index_keys
from .timeline import Timeline


class LoadedObject(NamedTuple):
    """An object for :meth:`FakeDirectory.load`: its index keys (None for a tombstone) are
    computed once for all DCs; ``usn_by_dc`` where the DCs' uSNChanged differ."""

    entry: DirectoryEntry
    keys: IndexKeys | None
    usn_by_dc: Mapping[str, int] | None = None


class Arrival(NamedTuple):
    """A replicated change on its way to ``dc``, landing at ``at``."""

    at: datetime
    version: int
    dc: str
    entry: DirectoryEntry
    keys: IndexKeys | None = None  # where it is filed, shared by every DC it lands on


def _ldap_error(
    code: str, message: str, *, dc: str, operation: str, target: str | None, hint: str | None = None
) -> PermanentError:
    return PermanentError(
        f"{code}: {message}", endpoint=dc, operation=operation, target=target, hint=hint
    )


class FakeDirectory:
    """One AD domain on several DCs: the ``Directory`` port, seeding, and what the fakes share."""

    OPERATIONS: ClassVar[tuple[str, ...]] = (
        "domain_controllers",
        "writable_dc",
        "find_users",
        "forest_namesakes",
        "lookup",
        "read",
        "read_catalog",
        "descendants",
        "delete",
        "modify",
        "unprotect",
        "replication_delays",
    )

    def __init__(
        self,
        domain: str,
        base_dn: str,
        dcs: Sequence[tuple[str, float]],
        *,
        timeline: Timeline,
        faults: Faults,
        writable_dc: str | None = None,
        partial_replicas: Collection[str] = (),
    ) -> None:
        if not dcs:
            raise ValueError("a domain needs at least one DC")
        names = [name for name, _ in dcs]
        if len(set(names)) != len(names):
            raise ValueError(f"DC names must be unique: {names}")
        if any(delay < 0 for _, delay in dcs):
            raise ValueError("replication delays must be >= 0")
        partial = frozenset(partial_replicas)
        if not partial <= set(names):
            raise ValueError(f"partial replicas {sorted(partial - set(names))} are not DCs")
        domain_dcs = [name for name in names if name not in partial]
        if not domain_dcs:
            raise ValueError("a domain needs at least one DC that is not a partial replica")
        writable = writable_dc if writable_dc is not None else domain_dcs[0]
        if writable not in names:
            raise ValueError(f"writable DC {writable!r} is not one of {names}")
        if writable in partial:
            raise ValueError(f"writable DC {writable!r} holds a read-only partial replica")
        self._partial = partial
        normalize(base_dn)  # a base that does not parse fails here, not on first use
        self._domain = domain
        self._base_dn = base_dn
        self._writable = writable
        self._views = {name: DcView(name, float(delay)) for name, delay in dcs}
        self._pending: list[Arrival] = []
        self._version = 0
        self._timeline = timeline
        self._op = Gate("directory", faults, timeline.catch_up)
        timeline.add_source(self)

    def clone(self, *, timeline: Timeline, faults: Faults) -> FakeDirectory:
        """An independent copy of the current state (entries are shared: they never change)."""
        twin = FakeDirectory(
            self._domain,
            self._base_dn,
            [(v.name, v.delay) for v in self._views.values()],
            timeline=timeline,
            faults=faults,
            writable_dc=self._writable,
            partial_replicas=self._partial,
        )
        twin._views = {name: view.copy() for name, view in self._views.items()}
        twin._pending = list(self._pending)
        twin._version = self._version
        return twin

    # The Directory port.

    @property
    def domain(self) -> str:
        return self._domain

    @property
    def base_dn(self) -> str:
        return self._base_dn

    def domain_controllers(self) -> list[str]:
        return self._op(
            "domain_controllers",
            self._writable,
            None,
            (),
            lambda: [name for name in self._views if name not in self._partial],
        )

    def replication_delays(self) -> dict[str, float]:
        return self._op(
            "replication_delays",
            self._writable,
            None,
            (),
            lambda: {view.name: float(view.delay) for view in self._views.values()},
        )

    def writable_dc(self) -> str:
        return self._op("writable_dc", self._writable, None, (), lambda: self._writable)

    def find_users(self, query: UserQuery, dc: str | None = None) -> list[DirectoryEntry]:
        name = self._writable if dc is None else dc

        def action() -> list[DirectoryEntry]:
            view = self.view(name, "directory.find_users")
            if query.base_dn is None:
                candidates: Iterable[DirectoryEntry] = view.entries()
            else:
                candidates = view.within(self._normal(query.base_dn, name, "directory.find_users"))
            match = _matcher(query)
            # In creation order, as AD returns a search without a sort control (and so the
            # answer does not depend on how the view was built).
            return sorted(filter(match, candidates), key=_creation_order)

        return self._op("find_users", name, query.base_dn, (query, name), action)

    def forest_namesakes(
        self, sam_account_names: Collection[str]
    ) -> dict[str, list[tuple[UUID, str]]]:
        """The fake forest is one domain: its global catalog is the writable DC's view."""
        wanted = list(sam_account_names)

        def action() -> dict[str, list[tuple[UUID, str]]]:
            view = self.view(self._writable, "directory.forest_namesakes")
            found: dict[str, list[tuple[UUID, str]]] = {name: [] for name in wanted}
            folded = {name.casefold(): name for name in wanted}
            for entry in view.entries():
                name = folded.get(entry.sam_account_name.casefold())
                if name is not None and entry.object_class == "user" and not entry.deleted:
                    found[name].append((entry.guid, entry.dn))
            return found

        return self._op("forest_namesakes", self._writable, None, (wanted,), action)

    def lookup(self, dn: str, dc: str | None = None) -> DirectoryEntry | None:
        """The live object named ``dn``. A world file may list objects without the containers
        they lie in (the minimum shape of a world file lists users only), but in AD every object's
        parents exist: a name above a live object is answered with a stand-in container
        (class from its RDN, GUID from its name, as old as the oldest object below it)."""
        name = self._writable if dc is None else dc

        def action() -> DirectoryEntry | None:
            view = self.view(name, "directory.lookup")
            try:
                wanted = normalize(dn)
            except ValueError:
                return None  # AD answers a name that does not parse as it does a missing one
            within = list(view.within(wanted))
            found = next((e for e in within if normalize(e.dn) == wanted), None)
            return found or (_implied_container(dn, within) if within else None)

        return self._op("lookup", name, dn, (dn, name), action)

    def read(
        self, guids: Collection[UUID], dc: str, *, include_deleted: bool = False
    ) -> dict[UUID, DirectoryEntry]:
        wanted = list(guids)

        def action() -> dict[UUID, DirectoryEntry]:
            view = self.view(dc, "directory.read")
            found = {guid: view.get(guid) for guid in wanted}
            return {
                guid: entry
                for guid, entry in found.items()
                if entry is not None and (include_deleted or not entry.deleted)
            }

        return self._op("read", dc, None, (wanted, dc, include_deleted), action)

    def read_catalog(self, guids: Collection[UUID], gc: str) -> dict[UUID, DirectoryEntry]:
        """Every fake DC is taken to be a global catalog too; a DC of the domain serves its own
        domain's full replica on the GC port, a partial replica the partial one."""
        wanted = list(guids)

        def action() -> dict[UUID, DirectoryEntry]:
            view = self.view(gc, "directory.read_catalog")
            found = {guid: view.live(guid) for guid in wanted}
            return {guid: entry for guid, entry in found.items() if entry is not None}

        return self._op("read_catalog", gc, None, (wanted, gc), action)

    def descendants(self, guids: Collection[UUID], dc: str) -> dict[UUID, list[DirectoryEntry]]:
        """Live objects strictly below each live object of ``guids``, deepest first; GUIDs not
        live on ``dc`` are left out."""
        wanted = list(guids)

        def action() -> dict[UUID, list[DirectoryEntry]]:
            view = self.view(dc, "directory.descendants")
            live = {guid: view.live(guid) for guid in wanted}
            return {guid: view.below(entry) for guid, entry in live.items() if entry is not None}

        return self._op("descendants", dc, None, (wanted, dc), action)

    def delete(self, guid: UUID, *, tree: bool) -> None:
        self._op(
            "delete", self._writable, str(guid), (guid, tree), lambda: self._delete(guid, tree)
        )

    def modify(self, guid: UUID, changes: Mapping[str, WriteValue | None]) -> None:
        self._op(
            "modify",
            self._writable,
            str(guid),
            (guid, dict(changes)),
            lambda: self.write(self._writable, guid, changes, operation="directory.modify"),
        )

    def unprotect(self, guid: UUID) -> None:
        def action() -> None:
            current = self._live(self._writable, guid, "directory.unprotect")
            if current.protected:
                self._commit(
                    self._writable,
                    replace(current, protected=False, when_changed=self._timeline.now()),
                )

        self._op("unprotect", self._writable, str(guid), (guid,), action)

    # Shared with the fake Exchange and the world file; not port calls (no faults, not counted).

    def view(self, dc: str, operation: str = "directory") -> DcView:
        """What ``dc`` holds now; an unknown name is a PermanentError."""
        view = self._views.get(dc)
        if view is None:
            raise PermanentError(
                f"unknown domain controller; known: {', '.join(self._views)}",
                endpoint=dc,
                operation=operation,
            )
        return view

    def views(self) -> list[DcView]:
        return list(self._views.values())

    @property
    def partial_replicas(self) -> frozenset[str]:
        """The global catalogs of other domains among the views (not DCs of this domain)."""
        return self._partial

    @property
    def writable(self) -> str:
        """The pinned writable DC, read without a backend operation."""
        return self._writable

    def write(
        self, origin: str, guid: UUID, changes: Mapping[str, WriteValue | None], *, operation: str
    ) -> bool:
        """Replace attributes of a live object on DC ``origin`` (None or [] clears one; bytes
        are a binary attribute's values). Returns False when nothing changed (then nothing
        replicates and no uSNChanged moves)."""
        if origin in self._partial:
            raise _ldap_error(
                "referral (10)",
                f"{origin} holds a read-only partial replica of {self._domain}",
                dc=origin,
                operation=operation,
                target=str(guid),
                hint="write through a DC of the domain",
            )
        current = self._live(origin, guid, operation)
        for name, value in changes.items():
            _check_value(name, value, current, origin, operation)
        texts = {k: v for k, v in changes.items() if not _is_binary(v)}
        blobs = {k: v for k, v in changes.items() if _is_binary(v) or v is None or v == []}
        attributes = _changed_attributes(current, texts)
        binary = _changed_binary(current, blobs)
        if attributes is None and binary is None:
            return False
        self._commit(
            origin,
            replace(
                current,
                attributes=current.attributes if attributes is None else attributes,
                binary=current.binary if binary is None else binary,
                when_changed=self._timeline.now(),
            ),
        )
        return True

    # Seeding and restoring (the world file, scenario builders).

    def add_object(
        self,
        dn: str,
        *,
        object_class: str = "user",
        guid: UUID | None = None,
        when_created: datetime | None = None,
        when_changed: datetime | None = None,
        protected: bool = False,
        attributes: Mapping[str, AttrValue] | None = None,
        usn_changed: int | None = None,
        deleted: bool = False,
        binary: Mapping[str, tuple[bytes, ...]] | None = None,
    ) -> DirectoryEntry:
        """Put an object on every DC as already replicated (default uSNChanged: the next one).
        Raises ValueError on a bad DN, a GUID already used, a mailbox GUID that is no UUID."""
        guid = guid or uuid4()
        if any(view.get(guid) is not None for view in self._views.values()):
            raise ValueError(f"objectGUID {guid} is already used")
        created = when_created or self._timeline.now()
        if usn_changed is None:
            usn_changed = max(view.usn for view in self._views.values()) + 1
        entry = DirectoryEntry(
            guid=guid,
            dn=dn,
            object_class=object_class,
            when_created=created,
            when_changed=when_changed or created,
            usn_changed=usn_changed,
            protected=protected,
            attributes=dict(attributes or {}),
            deleted=deleted,
            binary=dict(binary) if binary else NO_BINARY,
        )
        keys = None if deleted else index_keys(entry)
        for view in self._views.values():
            view.place(entry, keys)
        return entry

    def load(self, objects: Iterable[LoadedObject]) -> None:
        """Put many objects on every DC of an empty directory, as already replicated. Fast: one
        DC's view is built and copied to the others, each then gets its own uSNChanged where
        they differ."""
        first, *others = self._views.values()
        if any(view.usn for view in self._views.values()):
            raise ValueError("load() fills an empty directory; use add_object() afterwards")
        differing: list[LoadedObject] = []
        for item in objects:
            if first.get(item.entry.guid) is not None:
                raise ValueError(f"objectGUID {item.entry.guid} is already used")
            first.place(item.entry, item.keys)
            if item.usn_by_dc:
                differing.append(item)
        for view in others:
            self._views[view.name] = first.copy(view.name, view.delay)
        for item in differing:
            for name, usn in (item.usn_by_dc or {}).items():
                self.view(name).place(replace(item.entry, usn_changed=usn), item.keys)
        for view in self._views.values():  # the first DC's counter was copied to all
            view.usn = max((entry.usn_changed for entry in view.entries()), default=0)

    def place(self, dc: str, entry: DirectoryEntry) -> None:
        """Make ``dc`` hold ``entry`` as it is (a view not yet converged, from a saved world)."""
        if not entry.deleted:
            index_keys(entry)  # fail on a bad DN before anything changes
        self.view(dc).place(entry)

    def schedule(self, dc: str, at: datetime, entry: DirectoryEntry) -> None:
        """Make ``entry`` land on ``dc`` at ``at`` (a pending change, from a saved world)."""
        self.view(dc)
        self._version += 1
        heapq.heappush(self._pending, Arrival(at, self._version, dc, entry))

    def arrivals(self) -> list[Arrival]:
        """The changes still on their way that will land, in landing order."""
        return [
            arrival
            for arrival in sorted(self._pending)
            if self._views[arrival.dc].accepts(arrival.entry, arrival.version)
        ]

    # Replication, as a timeline source.

    def next_due(self) -> datetime | None:
        return self._pending[0].at if self._pending else None

    def process_next(self) -> None:
        arrival = heapq.heappop(self._pending)
        self._views[arrival.dc].land(arrival.entry, arrival.version, arrival.keys)

    def _commit(self, origin: str, entry: DirectoryEntry) -> None:
        self._version += 1
        now = self._timeline.now()
        keys = None if entry.deleted else index_keys(entry)
        for view in self._views.values():
            if view.name == origin or view.delay <= 0:
                view.land(entry, self._version, keys)
            else:
                arrival = Arrival(
                    now + timedelta(seconds=view.delay), self._version, view.name, entry, keys
                )
                heapq.heappush(self._pending, arrival)

    # Deletion.

    def _delete(self, guid: UUID, tree: bool) -> None:
        dc, operation = self._writable, "directory.delete"
        entry = self._live(dc, guid, operation)
        below = self._views[dc].below(entry)
        if entry.protected:
            raise _protected(entry, dc, operation)
        if below and not tree:
            raise _ldap_error(
                "notAllowedOnNonLeaf (66)",
                f"{entry.dn} has {len(below)} object(s) below it",
                dc=dc,
                operation=operation,
                target=entry.dn,
                hint="delete it with Tree Delete to remove them with it",
            )
        for child in below:
            if child.protected:
                raise _protected(child, dc, operation)
        now = self._timeline.now()
        for victim in [*below, entry]:
            self._commit(dc, _tombstone(victim, self._base_dn, now))

    def _live(self, dc: str, guid: UUID, operation: str) -> DirectoryEntry:
        """The live object on ``dc``, or noSuchObject naming it and the DC."""
        view = self.view(dc, operation)
        entry = view.live(guid)
        if entry is None:
            gone = view.get(guid)
            state = f"already deleted (tombstone {gone.dn})" if gone else "no such object"
            raise _ldap_error(
                "noSuchObject (32)",
                f"objectGUID {guid}: {state} on {dc}",
                dc=dc,
                operation=operation,
                target=str(guid),
            )
        return entry

    def _normal(self, dn: str, dc: str, operation: str) -> str:
        try:
            return normalize(dn)
        except ValueError as error:
            raise _ldap_error(
                "invalidDNSyntax (34)", str(error), dc=dc, operation=operation, target=dn
            ) from None

    # The organisation's lease (see remediate.engine.lease), on the pinned DC as AD keeps it:
    # a container object whose description is the holder's record.

    def lease(self, dn: str) -> str | None:
        def action() -> str | None:
            entry = self._lease_entry(dn, "directory.lease")
            return None if entry is None else entry.get("description")

        return self._op("lease", self._writable, dn, (dn,), action)

    def add_lease(self, dn: str, record: str) -> bool:
        def action() -> bool:
            operation = "directory.add_lease"
            if self._lease_entry(dn, operation) is not None:
                return False  # entryAlreadyExists (68)
            container = parent_dn(self._normal(dn, self._writable, operation))
            view = self.view(self._writable, operation)
            if container != normalize(self._base_dn) and not any(
                normalize(entry.dn) == container for entry in view.within(container)
            ):
                raise _ldap_error(
                    "noSuchObject (32)",
                    f"no container {container} for {dn}",
                    dc=self._writable,
                    operation=operation,
                    target=dn,
                    hint="create the container first",
                )
            now = self._timeline.now()
            self._commit(
                self._writable,
                DirectoryEntry(
                    guid=uuid4(),
                    dn=dn,
                    object_class="container",
                    when_created=now,
                    when_changed=now,
                    usn_changed=0,
                    attributes={"description": record},
                ),
            )
            return True

        return self._op("add_lease", self._writable, dn, (dn, record), action)

    def swap_lease(self, dn: str, old: str, new: str) -> bool:
        def action() -> bool:
            entry = self._lease_entry(dn, "directory.swap_lease")
            if entry is None or entry.get("description") != old:
                return False  # noSuchObject (32) or noSuchAttribute (16)
            return self.write(
                self._writable, entry.guid, {"description": new}, operation="directory.swap_lease"
            )

        return self._op("swap_lease", self._writable, dn, (dn, old, new), action)

    def remove_lease(self, dn: str, record: str) -> bool:
        def action() -> bool:
            entry = self._lease_entry(dn, "directory.remove_lease")
            if entry is None or entry.get("description") != record:
                return False
            self._commit(self._writable, _tombstone(entry, self._base_dn, self._timeline.now()))
            return True

        return self._op("remove_lease", self._writable, dn, (dn, record), action)

    def _lease_entry(self, dn: str, operation: str) -> DirectoryEntry | None:
        wanted = self._normal(dn, self._writable, operation)
        view = self.view(self._writable, operation)
        return next((entry for entry in view.within(wanted) if normalize(entry.dn) == wanted), None)


def _implied_container(dn: str, below: Sequence[DirectoryEntry]) -> DirectoryEntry:
    oldest = min(entry.when_created for entry in below)
    kind = "organizationalUnit" if rdn_type(dn).lower() == "ou" else "container"
    return DirectoryEntry(
        guid=uuid5(NAMESPACE_URL, f"ldap:///{normalize(dn)}"),
        dn=dn,
        object_class=kind,
        when_created=oldest,
        when_changed=oldest,
        usn_changed=0,
    )


def _protected(entry: DirectoryEntry, dc: str, operation: str) -> PermanentError:
    return _ldap_error(
        "insufficientAccessRights (50)",
        f"{entry.dn} is protected from accidental deletion",
        dc=dc,
        operation=operation,
        target=entry.dn,
        hint="clear the protection first, or rerun with --allow-protected only if this deletion "
        "is intended",
    )


def _tombstone(entry: DirectoryEntry, base_dn: str, now: datetime) -> DirectoryEntry:
    """What AD keeps of a deleted object: a mangled name under Deleted Objects, few attributes."""
    name = escape_rdn_value(rdn_value(entry.dn))
    attributes: dict[str, AttrValue] = {"lastKnownParent": parent_dn(entry.dn)}
    if entry.sam_account_name:
        attributes["sAMAccountName"] = entry.sam_account_name
    return replace(
        entry,
        dn=f"{rdn_type(entry.dn)}={name}\\0ADEL:{entry.guid},CN=Deleted Objects,{base_dn}",
        when_changed=now,
        protected=False,
        attributes=attributes,
        deleted=True,
    )


def _is_binary(value: object) -> bool:
    return isinstance(value, bytes) or (
        isinstance(value, list) and bool(value) and isinstance(value[0], bytes)
    )


def _changed_attributes(
    current: DirectoryEntry, changes: Mapping[str, WriteValue | None]
) -> dict[str, AttrValue] | None:
    """The text attributes after ``changes`` (existing spellings kept), or None if nothing
    changes."""
    attributes = dict(current.attributes)
    spelled = {key.lower(): key for key in attributes}
    for name, value in changes.items():
        key = spelled.get(name.lower(), name)
        if value is None or value == []:
            attributes.pop(key, None)
        elif isinstance(value, str):
            attributes[key] = value
            spelled[name.lower()] = key
        else:
            attributes[key] = [str(item) for item in value]
            spelled[name.lower()] = key
    return None if attributes == current.attributes else attributes


def _changed_binary(
    current: DirectoryEntry, changes: Mapping[str, WriteValue | None]
) -> dict[str, tuple[bytes, ...]] | None:
    """The binary attributes after ``changes`` (None: clear), or None if nothing changes."""
    binary = dict(current.binary)
    spelled = {key.lower(): key for key in binary}
    for name, value in changes.items():
        key = spelled.get(name.lower(), name)
        if isinstance(value, bytes):
            binary[key] = (value,)
        elif isinstance(value, list) and value:
            binary[key] = tuple(item for item in value if isinstance(item, bytes))
        else:
            binary.pop(key, None)
        if key in binary:
            spelled[name.lower()] = key
    return None if binary == dict(current.binary) else binary


def _check_value(name: str, value: object, entry: DirectoryEntry, dc: str, operation: str) -> None:
    """Refuse what AD would refuse: mixed or non-text values, a GUID attribute that is no
    GUID."""
    values = (
        [value] if isinstance(value, str | bytes) else (value if isinstance(value, list) else None)
    )
    valid = value is None or (
        values is not None
        and (all(isinstance(v, str) for v in values) or all(isinstance(v, bytes) for v in values))
    )
    if valid and values and name.lower() in GUID_ATTRIBUTES:
        try:
            UUID(str(values[0]))
        except ValueError:
            valid = False
    if not name or not valid:
        raise _ldap_error(
            "invalidAttributeSyntax (21)",
            f"{name!r} cannot take the value {value!r}",
            dc=dc,
            operation=operation,
            target=entry.dn,
        )


def _creation_order(entry: DirectoryEntry) -> tuple[datetime, int]:
    return entry.when_created, entry.guid.int


def _matcher(query: UserQuery) -> Callable[[DirectoryEntry], bool]:
    sams = None if query.sam_account_names is None else {s.lower() for s in query.sam_account_names}
    legacy = (
        None
        if query.legacy_exchange_dns is None
        else {d.lower() for d in query.legacy_exchange_dns}
    )

    def match(entry: DirectoryEntry) -> bool:
        if entry.deleted or entry.object_class.lower() != "user":
            return False
        if query.created_after is not None and entry.when_created < query.created_after:
            return False
        if query.created_before is not None and entry.when_created > query.created_before:
            return False
        if sams is not None and entry.sam_account_name.lower() not in sams:
            return False
        if legacy is not None and (entry.get("legacyExchangeDN") or "").lower() not in legacy:
            return False
        return not query.mail_enabled_only or entry.mail_enabled

    return match
