"""World files: a fake world saved as JSON, ``"format": "remediate.world/1"``
(docs/ARCHITECTURE.md, World files).

Every malformed part is reported as a :class:`~remediate.errors.WorldFormatError` naming its JSON
path (``$.exchange.servers[0].stores[1].mailboxes[3].guid``) and what is expected.

Extension keys, for state the minimum shape cannot express; each is omitted when empty (absent
means the default given):

- ``clock`` (top level): the virtual now, ISO 8601. Default: the latest ``when_created`` or
  ``disconnected_at`` in the file plus one hour, or 2026-11-01T00:00:00Z.
- ``scenario`` (top level): a free-form object (a scenario builder's ``name``, ``seed``,
  ``size``, ``parameters``), kept as it is; ``FakeWorld.scenario``.
- on an object: ``when_changed`` (default ``when_created``); ``usn_changed``, a number, or
  ``{"<dc>": number, ...}`` where the DCs differ (default: numbered in file order).
- ``directory.writable_dc``: the DC writes go to (default: the first DC).
- ``directory.tombstones``: deleted objects, shaped like ``objects`` (kept out of ``objects``, so
  a reader that does not know this key sees them gone).
- ``directory.pending``: replication not yet landed.
  ``{"views": {"<dc>": [object, ...]}, "arrivals": [{"dc": ..., "at": ..., "object": ...}]}``:
  ``views`` holds the objects a DC holds differently from ``objects``/``tombstones`` (which show
  the writable DC's view), ``arrivals`` the changes on their way, landing at ``at``. Objects
  here carry ``"deleted": true`` when they are tombstones.
- on a server: ``cleanup_interval_s`` (Exchange 2000/2003 run the cleanup agent by themselves
  this often; default 86400), ``legacy_dn`` (default
  ``/o=<domain>/ou=First Administrative Group/cn=Configuration/cn=Servers/cn=<name>``), ``queue``
  (mail held while transport is stopped: ``[{"recipient": legacyExchangeDN, "item": item}]``),
  ``roles`` (its server roles as Get-ExchangeServer names them, e.g. ``["Mailbox"]`` or
  ``["HubTransport"]``; default: the version's, ``remediate.model.default_roles``) and ``site``
  (its AD site; default ``""``, one site for all), ``dependents`` (``{"<service>": [services
  that depend on it]}``, what ``Stop-Service -Force`` stops with it; default none).

- on a mailbox: ``created_at`` (when the store created it: its first logon or delivery) and
  ``last_logon_at`` (the store's last-logon time), ISO 8601 or null; absent means unknown.

Mail items keep any key besides ``id``, ``folder`` and ``subject``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple, TypeVar
from uuid import UUID

from remediate.dn import normalize
from remediate.gcpolicy import building
from remediate.model import (
    NO_BINARY,
    AttrValue,
    DirectoryEntry,
    ExchangeVersion,
    MailItem,
    ServiceState,
    default_roles,
    utc,
)

from .directory import FakeDirectory, LoadedObject
from .exchange import DEFAULT_CLEANUP_INTERVAL_S, FakeMailbox, FakeServer
from .exports import item_from_json, item_to_json
from .jsonfile import (
    At,
    as_object,
    check_depth,
    elements,
    flag,
    format_time,
    kind_of,
    members,
    moment,
    number,
    optional_moment,
    parse_moment,
    parse_uuid,
    read_json,
    text,
    uuid,
    write_json,
)
from .packed import PackedItems
from .replica import IndexKeys, index_keys
from .world import FakeWorld

FORMAT = "remediate.world/1"
# A DC that has not replicated for longer than the tombstone lifetime (180 days since Windows
# Server 2003 SP1) must not replicate again (lingering objects): no lag can be longer.
MAX_LAG_S = 180 * 86400.0
# Exchange System Manager schedules each store's maintenance (where the cleanup agent runs by
# itself) on a weekly grid: a store that runs it at all does so at least once a week.
MAX_CLEANUP_INTERVAL_S = 7 * 86400.0
_MAX_USN = 2**63 - 1
DEFAULT_CLOCK = utc("2026-11-01T00:00:00Z")
_VERSIONS = ", ".join(version.value for version in ExchangeVersion)
_STATES = ", ".join(state.value for state in ServiceState)
K = TypeVar("K", bound=Hashable)


def load_world(path: Path | str) -> FakeWorld:
    path = Path(path)
    with building():
        return world_from_json(read_json(path), source=str(path))


def save_world(world: FakeWorld, path: Path | str) -> None:
    """Write the world atomically (what is due by now is processed first)."""
    with building():
        write_json(Path(path), world_to_json(world))


def world_from_json(data: object, source: str | None = None) -> FakeWorld:
    """The world a parsed world file describes; WorldFormatError names what is wrong where."""
    with building():
        return _world_from_json(data, source, _Reader())


class WorldAssembler:
    """Builds a world from a document whose mailboxes are read one at a time ahead of it (a
    scenario builder streams them), so a world's mail never sits in memory as JSON: the same
    reading and checks as :func:`world_from_json`, mailbox by mailbox."""

    def __init__(self, source: str | None = None) -> None:
        self._source = source
        self._reader = _Reader()
        self._read = 0

    def mailbox(self, value: object) -> FakeMailbox:
        """A mailbox of the document (``mailboxes`` element shape), read and checked now."""
        self._read += 1
        at = At(source=self._source).child("mailboxes").child(self._read - 1)
        mailbox = self._reader.mailbox(value, at)
        # Read ahead without its store: unique across the world (no recovery copies here).
        _unique(self._reader.mailboxes, mailbox.guid, at, "guid", "mailbox GUID")
        return mailbox

    def world(self, document: object, mailboxes: Mapping[str, list[FakeMailbox]]) -> FakeWorld:
        """The world ``document`` describes, each store holding ``mailboxes[its dn]`` (read by
        :meth:`mailbox`) instead of its own ``mailboxes`` array."""
        self._reader.premade = dict(mailboxes)
        with building():
            return _world_from_json(document, self._source, self._reader)


def _world_from_json(data: object, source: str | None, reader: _Reader) -> FakeWorld:
    root = At(source=source)
    document = as_object(data, root)
    if document.get("format") != FORMAT:
        found = f"got {document['format']!r}" if "format" in document else "missing"
        root.child("format").fail(f"expected {FORMAT!r} ({found})")
    d_at = root.child("directory")
    directory = members(document, "directory", root)
    domain, (base_dn, _) = text(directory, "domain", d_at), _dn(directory, "base_dn", d_at)
    dcs = reader.dcs_of(directory, d_at)
    writable = (
        reader.dc_name(directory, "writable_dc", d_at) if "writable_dc" in directory else None
    )
    objects = [
        reader.directory_object(value, at, tombstone=tombstone)
        for key, tombstone in (("objects", False), ("tombstones", True))
        for at, value in elements(directory, key, d_at, optional=tombstone)
    ]
    views, arrivals = reader.pending(members(directory, "pending", d_at, optional=True), d_at)
    servers = [
        reader.server(value, at)
        for at, value in elements(
            members(document, "exchange", root), "servers", root.child("exchange")
        )
    ]
    with _at(d_at):
        world = FakeWorld.create(
            domain=domain,
            base_dn=base_dn,
            dcs=dcs,
            now=reader.clock(document, root),
            writable_dc=writable,
            partial_replicas=reader.partial,
            scenario=_scenario(document, root),
        )
    _fill_directory(world.directory, objects, views, arrivals)
    for server in servers:
        _add_server(world, server)
    for server in servers:  # a DAG's copies name servers that may come later in the file
        for store in server.stores:
            for index, holder in enumerate(store.passive_copies):
                with _at(store.at.child("passive_copies").child(index)):
                    world.exchange.add_database_copy(store.dn, holder)
    x_at = root.child("exchange")
    exchange = members(document, "exchange", root)
    for a_at, value in elements(exchange, "disabled_archives", x_at, optional=True):
        held = as_object(value, a_at)
        try:
            user = UUID(text(held, "user", a_at))
        except ValueError:
            a_at.child("user").fail("expected a GUID")
        name = held.get("name")
        if name is not None and not isinstance(name, str):
            a_at.child("name").fail("expected a string or null")
        world.exchange.remember_disabled_archive(user, text(held, "archive", a_at), name)
    return world


# Reading: first everything is read and checked, then the world is built.


@dataclass(slots=True)
class _Object:
    at: At
    entry: DirectoryEntry
    keys: IndexKeys | None  # None for a tombstone
    usn_by_dc: dict[str, int] | None  # when the DCs differ
    usn_given: bool


class _Store(NamedTuple):
    at: At
    name: str
    storage_group: str
    dn: str
    mailboxes: list[FakeMailbox]
    recovery: bool
    passive_copies: tuple[str, ...] = ()


@dataclass(slots=True)
class _Server:
    at: At
    info: tuple[str, ExchangeVersion, str]  # name, version, DC
    global_catalog: str | None
    services: dict[str, ServiceState]
    interval: float
    legacy_dn: str | None
    mail_export_refusal: str | None
    roles: tuple[str, ...] = ()
    site: str = ""
    dependents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    export_location: str | None = None
    stores: list[_Store] = field(default_factory=list)
    queue: list[tuple[str, MailItem]] = field(default_factory=list)


_Views = list[tuple[str, _Object]]
_Arrivals = list[tuple[str, datetime, _Object]]


@dataclass(slots=True)
class _Reader:
    """Reads one document, remembering what later parts are checked against."""

    dcs: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)  # GCs of another domain among the DCs
    usn: int = 0  # the highest uSNChanged so far: objects without one are numbered on
    latest: datetime | None = None  # for the default clock
    guids: dict[UUID, At] = field(default_factory=dict)
    dns: dict[str, At] = field(default_factory=dict)
    servers: dict[str, At] = field(default_factory=dict)
    store_dns: dict[str, At] = field(default_factory=dict)
    mailboxes: dict[UUID, At] = field(default_factory=dict)
    # Recovery and soft-deleted copies share a live mailbox's GUID: unique per store only.
    copies: dict[tuple[str, UUID], At] = field(default_factory=dict)
    # Mailboxes read ahead (WorldAssembler), by store DN as the document spells it.
    premade: dict[str, list[FakeMailbox]] = field(default_factory=dict)

    def saw(self, moment_: datetime) -> None:
        if self.latest is None or moment_ > self.latest:
            self.latest = moment_

    def clock(self, document: Mapping[str, object], root: At) -> datetime:
        if "clock" in document:
            return parse_moment(text(document, "clock", root), root, "clock")
        return self.latest + timedelta(hours=1) if self.latest else DEFAULT_CLOCK

    def dcs_of(self, directory: Mapping[str, object], at: At) -> list[tuple[str, float]]:
        dcs: list[tuple[str, float]] = []
        names: dict[str, At] = {}
        for dc_at, value in elements(directory, "dcs", at):
            data = as_object(value, dc_at)
            name = text(data, "name", dc_at)
            _unique(names, name, dc_at, "name", "DC name")
            delay = number(
                data,
                "replication_delay_s",
                dc_at,
                0.0,
                low=0,
                high=MAX_LAG_S,
                why="seconds; a DC that has not replicated for the tombstone "
                "lifetime, 180 days, must be rebuilt, not waited for",
            )
            dcs.append((name, delay))
            if flag(data, "partial_replica", dc_at, False):
                self.partial.append(name)
        if not dcs:
            at.child("dcs").fail("expected at least one DC")
        self.dcs = [name for name, _ in dcs]
        return dcs

    def dc_name(self, data: Mapping[str, object], key: str, at: At) -> str:
        """A field naming a DC."""
        name = text(data, key, at)
        self.check_dc(name, at.child(key))
        return name

    def check_dc(self, name: str, at: At) -> None:
        if name not in self.dcs:
            at.fail(f"{name!r} is not a DC of directory.dcs ({', '.join(self.dcs)})")

    def directory_object(
        self, value: object, at: At, *, tombstone: bool, pending: bool = False
    ) -> _Object:
        """An object of ``objects``/``tombstones`` or, with ``pending``, of the pending state."""
        data = as_object(value, at)
        dn, normal = _dn(data, "dn", at)
        deleted = flag(data, "deleted", at, False)
        if deleted and not (tombstone or pending):
            at.child("deleted").fail("deleted objects belong in directory.tombstones")
        deleted = deleted or tombstone
        attributes = _attributes(data, at)
        guid = uuid(data, "guid", at)
        created = moment(data, "when_created", at)
        usn, usn_by_dc = self._usn(data, at, pending)
        entry = DirectoryEntry(
            guid=guid,
            dn=dn,
            object_class=text(data, "object_class", at),
            when_created=created,
            when_changed=optional_moment(data, "when_changed", at) or created,
            usn_changed=usn,
            protected=flag(data, "protected", at, False),
            attributes=attributes,
            deleted=deleted,
            binary=_binary(data, at),
        )
        if pending:
            if guid not in self.guids:
                at.child("guid").fail("no object or tombstone has this objectGUID")
        else:
            self.saw(created)
            _unique(self.guids, guid, at, "guid", "objectGUID")
            if not deleted:
                _unique(self.dns, normal, at, "dn", "DN (case-insensitive)")
        return _Object(at, entry, _keys(entry, normal, at), usn_by_dc, "usn_changed" in data)

    def _usn(
        self, data: Mapping[str, object], at: At, pending: bool
    ) -> tuple[int, dict[str, int] | None]:
        """This object's uSNChanged, and per DC where they differ (numbered on when absent)."""
        value = data.get("usn_changed")
        if value is None:
            if pending:
                return 0, None
            self.usn += 1
            return self.usn, None
        if not isinstance(value, dict) or pending:
            usn = _count(data, "usn_changed", at)
            self.usn = max(self.usn, usn)
            return usn, None
        where = at.child("usn_changed")
        if set(value) != set(self.dcs):
            where.fail(f"expected a number for each DC ({', '.join(self.dcs)})")
        by_dc = {dc: _count(value, dc, where) for dc in self.dcs}
        self.usn = max(self.usn, *by_dc.values())
        return by_dc[self.dcs[0]], by_dc

    def pending(self, pending: Mapping[str, object], at: At) -> tuple[_Views, _Arrivals]:
        p_at = at.child("pending")
        views: _Views = []
        held = members(pending, "views", p_at, optional=True)
        for dc in held:
            self.check_dc(dc, p_at.child("views").child(dc))
            for o_at, value in elements(held, dc, p_at.child("views")):
                views.append(
                    (dc, self.directory_object(value, o_at, tombstone=False, pending=True))
                )
        arrivals: _Arrivals = []
        for a_at, value in elements(pending, "arrivals", p_at, optional=True):
            data = as_object(value, a_at)
            change = members(data, "object", a_at)
            arrival = self.directory_object(
                change, a_at.child("object"), tombstone=False, pending=True
            )
            arrivals.append((self.dc_name(data, "dc", a_at), moment(data, "at", a_at), arrival))
        return views, arrivals

    def server(self, value: object, at: At) -> _Server:
        data = as_object(value, at)
        name = text(data, "name", at)
        _unique(self.servers, name, at, "name", "server name")
        version = text(data, "version", at)
        if version not in ExchangeVersion._value2member_map_:
            at.child("version").fail(f"unknown Exchange version {version!r}; valid: {_VERSIONS}")
        interval = number(
            data,
            "cleanup_interval_s",
            at,
            DEFAULT_CLEANUP_INTERVAL_S,
            low=0,
            high=MAX_CLEANUP_INTERVAL_S,
            why="seconds; ESM schedules a store's maintenance within a week",
        )
        if interval <= 0:
            at.child("cleanup_interval_s").fail("expected a number of seconds > 0")
        legacy_dn = text(data, "legacy_dn", at) if "legacy_dn" in data else None
        refusal = (
            text(data, "mail_export_refusal", at)
            if data.get("mail_export_refusal") is not None
            else None
        )
        server = _Server(
            at,
            (name, ExchangeVersion(version), self.dc_name(data, "dc", at)),
            self.dc_name(data, "global_catalog", at) if "global_catalog" in data else None,
            _services(data, at),
            interval,
            legacy_dn,
            refusal,
            _roles(data, at),
            text(data, "site", at) if data.get("site") not in (None, "") else "",
            _dependents(data, at),
            text(data, "export_location", at) if data.get("export_location") is not None else None,
        )
        for store_at, store in elements(data, "stores", at):
            server.stores.append(self._store(store, store_at))
        for held_at, held in elements(data, "queue", at, optional=True):
            mail = as_object(held, held_at)
            item = item_from_json(members(mail, "item", held_at), held_at.child("item"))
            server.queue.append((text(mail, "recipient", held_at), item))
        return server

    def _store(self, value: object, at: At) -> _Store:
        data = as_object(value, at)
        dn, normal = _dn(data, "dn", at)
        _unique(self.store_dns, normal, at, "dn", "store DN")
        recovery = flag(data, "recovery", at, default=False)
        copies = tuple(
            _server_name(value, copy_at)
            for copy_at, value in elements(data, "passive_copies", at, optional=True)
        )
        mailboxes = self.premade.pop(dn, None)
        if mailboxes is None:
            boxes = elements(data, "mailboxes", at)
            mailboxes = [self.mailbox(box, box_at) for box_at, box in boxes]
            for index, mailbox in enumerate(mailboxes):
                box_at = at.child("mailboxes").child(index)
                if recovery or mailbox.soft_deleted:
                    _unique(self.copies, (normal, mailbox.guid), box_at, "guid", "mailbox GUID")
                else:
                    _unique(self.mailboxes, mailbox.guid, box_at, "guid", "mailbox GUID")
        return _Store(
            at,
            text(data, "name", at),
            text(data, "storage_group", at),
            dn,
            mailboxes,
            recovery,
            copies,
        )

    def mailbox(self, value: object, at: At) -> FakeMailbox:
        data = as_object(value, at)
        guid = uuid(data, "guid", at)
        disconnected = optional_moment(data, "disconnected_at", at)
        if disconnected is not None:
            self.saw(disconnected)
        items: list[MailItem] = []
        ids: dict[str, At] = {}
        for item_at, item in elements(data, "items", at):
            mail = item_from_json(item, item_at)
            _unique(ids, mail.id, item_at, "id", "item id")
            items.append(mail)
        legacy_dn, display_name = text(data, "legacy_dn", at), text(data, "display_name", at)
        created = optional_moment(data, "created_at", at)
        logon = optional_moment(data, "last_logon_at", at)
        for seen in (created, logon):
            if seen is not None:
                self.saw(seen)
        if created is not None and logon is not None and logon < created:
            at.child("last_logon_at").fail(
                "is before created_at: a mailbox is logged on to only once it exists"
            )
        return FakeMailbox(
            guid,
            legacy_dn,
            display_name,
            disconnected,
            PackedItems(items),
            created_at=created,
            last_logon_at=logon,
            soft_deleted=flag(data, "soft_deleted", at, default=False),
        )


def _scenario(document: Mapping[str, object], root: At) -> dict[str, object] | None:
    """The free-form scenario block, kept as it is (but not nested without end)."""
    if "scenario" not in document:
        return None
    block = members(document, "scenario", root)
    check_depth(block, root.child("scenario"))
    return block


def _server_name(value: object, at: At) -> str:
    if not isinstance(value, str) or not value:
        at.fail(f"expected a server name, got {kind_of(value)}")
    return value


def _unique(seen: dict[K, At], key: K, at: At, field_name: str, what: str) -> None:
    """Remember ``key`` as found at ``at``; a second one is an error at its ``field_name``."""
    first = seen.setdefault(key, at)
    if first is not at:
        at.child(field_name).fail(f"duplicate {what} {key}, also at {first.child(field_name)}")


def _count(data: Mapping[str, object], key: str, at: At) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_USN:
        at.child(key).fail(
            f"expected a whole number from 0 to {_MAX_USN} (AD's update "
            f"sequence numbers are 64-bit), got {value!r}"
        )
    return value


def _dn(data: Mapping[str, object], key: str, at: At) -> tuple[str, str]:
    """A DN field, and its normalized form."""
    dn = text(data, key, at)
    try:
        return dn, normalize(dn)
    except ValueError as error:
        at.child(key).fail(f"not a distinguished name: {error}")


def _binary(data: Mapping[str, object], at: At) -> Mapping[str, tuple[bytes, ...]]:
    """``binary``: each binary attribute's values in base64 (SIDs, security descriptors)."""
    raw = members(data, "binary", at, optional=True)
    if not raw:
        return NO_BINARY
    binary: dict[str, tuple[bytes, ...]] = {}
    for name, value in raw.items():
        where = at.child("binary").child(name)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            where.fail(f"expected an array of base64 strings, got {kind_of(value)}")
        try:
            binary[name] = tuple(base64.b64decode(item, validate=True) for item in value)
        except (binascii.Error, ValueError):
            where.fail("not base64")
    return binary


def _attributes(data: Mapping[str, object], at: At) -> dict[str, AttrValue]:
    raw = members(data, "attributes", at, optional=True)
    attributes: dict[str, AttrValue] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            attributes[name] = value
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            attributes[name] = list(value)
        else:
            at.child("attributes").child(name).fail(
                f"expected a string or an array of strings, got {kind_of(value)}"
            )
    return attributes


def _keys(entry: DirectoryEntry, normal_dn: str, at: At) -> IndexKeys | None:
    """Where a live object is filed (None for a tombstone); its msExchMailboxGuid must be a
    UUID either way."""
    try:
        keys = index_keys(entry, normal_dn)
    except ValueError:
        value = entry.get("msExchMailboxGuid") or ""
        name = next(key for key in entry.attributes if key.lower() == "msexchmailboxguid")
        parse_uuid(value, at.child("attributes"), name)
        raise
    return None if entry.deleted else keys


def _dependents(data: Mapping[str, object], at: At) -> dict[str, tuple[str, ...]]:
    raw = data.get("dependents")
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(names, list) and all(isinstance(n, str) and n for n in names)
        for names in raw.values()
    ):
        at.child("dependents").fail('expected {"<service>": ["<dependent service>", ...]}')
    return {str(name): tuple(names) for name, names in raw.items()}


def _roles(data: Mapping[str, object], at: At) -> tuple[str, ...]:
    raw = data.get("roles")
    if raw is None:
        return ()
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(role, str) and role.strip() for role in raw)
    ):
        at.child("roles").fail('expected a non-empty list of role names, e.g. ["Mailbox"]')
    return tuple(str(role) for role in raw)


def _services(data: Mapping[str, object], at: At) -> dict[str, ServiceState]:
    services: dict[str, ServiceState] = {}
    raw = members(data, "services", at)
    for name in raw:
        state = text(raw, name, at.child("services"))
        if state not in ServiceState._value2member_map_:
            at.child("services").child(name).fail(f"expected one of {_STATES}, got {state!r}")
        services[name] = ServiceState(state)
    return services


@contextmanager
def _at(at: At) -> Iterator[None]:
    """Report a ValueError of the seeding API at this path (a backstop behind the checks)."""
    try:
        yield
    except ValueError as error:
        at.fail(str(error))


def _fill_directory(
    directory: FakeDirectory, objects: list[_Object], views: _Views, arrivals: _Arrivals
) -> None:
    directory.load(LoadedObject(item.entry, item.keys, item.usn_by_dc) for item in objects)
    for dc, item in views:
        entry = item.entry
        if not item.usn_given:  # as that DC numbered it
            held = directory.view(dc).get(entry.guid)
            entry = replace(entry, usn_changed=held.usn_changed if held else 0)
        with _at(item.at):
            directory.place(dc, entry)
    for dc, moment_, item in arrivals:
        directory.schedule(dc, moment_, item.entry)


def _add_server(world: FakeWorld, server: _Server) -> None:
    exchange = world.exchange
    name, version, dc = server.info
    with _at(server.at):
        exchange.add_server(
            name,
            version,
            dc,
            services=server.services,
            legacy_dn=server.legacy_dn,
            cleanup_interval_s=server.interval,
            mail_export_refusal=server.mail_export_refusal,
            roles=server.roles,
            site=server.site,
            dependents=server.dependents,
            export_location=server.export_location,
            global_catalog=server.global_catalog,
        )
    for store in server.stores:
        with _at(store.at):
            exchange.add_store(
                name, store.name, store.storage_group, store.dn, recovery=store.recovery
            )
            exchange.add_mailboxes(store.dn, store.mailboxes)
    for recipient, item in server.queue:
        exchange.hold(name, recipient, item)


# Writing.


def world_to_json(world: FakeWorld) -> dict[str, object]:
    """The world as a ``remediate.world/1`` document (what is due by now is processed first)."""
    world.catch_up()
    document: dict[str, object] = {"format": FORMAT, "clock": format_time(world.clock.now())}
    if world.scenario is not None:
        document["scenario"] = world.scenario
    document["directory"] = _directory_json(world.directory)
    exchange: dict[str, object] = {
        "servers": [_server_json(world, server) for server in world.exchange.records()]
    }
    archives = world.exchange.disabled_archives()
    if archives:  # Disable-Mailbox left these archives disconnected: Connect-Mailbox -Archive
        exchange["disabled_archives"] = [
            {"user": str(user), "archive": archive, "name": name}
            for user, (archive, name) in sorted(archives.items(), key=lambda pair: str(pair[0]))
        ]
    document["exchange"] = exchange
    return document


def _directory_json(directory: FakeDirectory) -> dict[str, object]:
    views = directory.views()
    objects: list[dict[str, object]] = []
    tombstones: list[dict[str, object]] = []
    differing: dict[str, list[dict[str, object]]] = {}
    # Live objects first: the order a loaded world's views have, so a save is stable.
    for entry in sorted(directory.view(directory.writable).entries(), key=_is_deleted):
        usns: dict[str, int] = {}
        for view in views:
            # Each DC's own uSNChanged, even where it holds the object differently: a DC's
            # highest USN is the largest of its objects', so no other DC's may pass through.
            held = view.get(entry.guid) or entry
            if held is not entry and replace(held, usn_changed=entry.usn_changed) != entry:
                differing.setdefault(view.name, []).append(_object_json(held, held.usn_changed))
            usns[view.name] = held.usn_changed
        usn = entry.usn_changed if len(set(usns.values())) == 1 else usns
        (tombstones if entry.deleted else objects).append(
            _object_json(entry, usn, mark_deleted=False)
        )
    result: dict[str, object] = {
        "domain": directory.domain,
        "base_dn": directory.base_dn,
        "dcs": [
            {
                "name": view.name,
                "replication_delay_s": _number(view.delay),
                **({"partial_replica": True} if view.name in directory.partial_replicas else {}),
            }
            for view in views
        ],
    }
    if directory.writable != views[0].name:
        result["writable_dc"] = directory.writable
    result["objects"] = objects
    if tombstones:
        result["tombstones"] = tombstones
    pending: dict[str, object] = {}
    if differing:
        pending["views"] = differing
    arrivals = [
        {
            "dc": arrival.dc,
            "at": format_time(arrival.at),
            "object": _object_json(arrival.entry, None),
        }
        for arrival in directory.arrivals()
    ]
    if arrivals:
        pending["arrivals"] = arrivals
    if pending:
        result["pending"] = pending
    return result


def _is_deleted(entry: DirectoryEntry) -> bool:
    return entry.deleted


def _object_json(
    entry: DirectoryEntry, usn: int | dict[str, int] | None, *, mark_deleted: bool = True
) -> dict[str, object]:
    data: dict[str, object] = {
        "dn": entry.dn,
        "object_class": entry.object_class,
        "guid": str(entry.guid),
        "when_created": format_time(entry.when_created),
        "protected": entry.protected,
        "attributes": {
            k: v if isinstance(v, str) else list(v) for k, v in entry.attributes.items()
        },
    }
    if entry.binary:
        data["binary"] = {
            name: [base64.b64encode(value).decode("ascii") for value in values]
            for name, values in entry.binary.items()
        }
    if entry.when_changed != entry.when_created:
        data["when_changed"] = format_time(entry.when_changed)
    if usn is not None:
        data["usn_changed"] = usn
    if mark_deleted and entry.deleted:
        data["deleted"] = True
    return data


def _server_json(world: FakeWorld, server: FakeServer) -> dict[str, object]:
    info = server.info
    data: dict[str, object] = {
        "name": info.name,
        "version": info.version.value,
        "dc": info.dc,
        **({"global_catalog": info.global_catalogs[0]} if info.global_catalogs else {}),
        "services": {name: state.value for name, state in server.services.items()},
        "stores": [
            {
                "name": store.info.name,
                "storage_group": store.info.storage_group,
                "dn": store.info.dn,
                **({"recovery": True} if store.info.recovery else {}),
                **(
                    {"passive_copies": copies}
                    if (copies := world.exchange.database_copies(store.info.dn))
                    else {}
                ),
                "mailboxes": list(_mailboxes_json(store.mailboxes.values())),
            }
            for store in server.stores.values()
        ],
    }
    if server.cleanup_interval_s != DEFAULT_CLEANUP_INTERVAL_S:
        data["cleanup_interval_s"] = _number(server.cleanup_interval_s)
    if server.legacy_dn != world.exchange.default_legacy_dn(info.name):
        data["legacy_dn"] = server.legacy_dn
    if server.mail_export_refusal is not None:
        data["mail_export_refusal"] = server.mail_export_refusal
    if server.export_location is not None:
        data["export_location"] = server.export_location
    if info.roles != default_roles(info.version):
        data["roles"] = sorted(info.roles)
    if info.site:
        data["site"] = info.site
    if server.dependents:
        data["dependents"] = {name: list(names) for name, names in server.dependents.items()}
    if server.queue:
        data["queue"] = [
            {"recipient": held.recipient, "item": item_to_json(held.item)} for held in server.queue
        ]
    return data


def _mailboxes_json(mailboxes: Iterable[FakeMailbox]) -> Iterator[dict[str, object]]:
    for mailbox in mailboxes:
        data: dict[str, object] = {
            "guid": str(mailbox.guid),
            "legacy_dn": mailbox.legacy_dn,
            "display_name": mailbox.display_name,
            "disconnected_at": format_time(mailbox.disconnected_at)
            if mailbox.disconnected_at
            else None,
        }
        if mailbox.soft_deleted:
            data["soft_deleted"] = True
        if mailbox.created_at is not None:
            data["created_at"] = format_time(mailbox.created_at)
        if mailbox.last_logon_at is not None:
            data["last_logon_at"] = format_time(mailbox.last_logon_at)
        data["items"] = [item_to_json(item) for item in mailbox.items]
        yield data


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
