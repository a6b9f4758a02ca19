"""Broken worlds for the two KB playbooks, any size, from a seed.

Each builder returns a plain JSON-able ``remediate.world/1`` dict (a world file) holding the state
its KB describes, plus a ``scenario`` block: the playbook parameters that select the broken
objects and what must hold after the repair (for tests). The same ``(size, seed, version)``
always gives the same JSON text: every random choice comes from one ``random.Random`` seeded with
``"<name>:<seed>"``, timestamps are fixed, and every list is sorted. :func:`scenario_world` builds
the same world without the document: each mailbox is read into the world as it is made, so the
mail (half the document) never sits in memory as JSON.

Store layout by version (what ESM or the management shell would show):

- 2000/2003: storage group "First Storage Group", store "Mailbox Store (EXCH01)", administrative
  group "First Administrative Group".
- 2007: storage group "First Storage Group", database "Mailbox Database (EXCH01)", administrative
  group "Exchange Administrative Group (FYDIBOHF23SPDLT)".
- 2010 and later: no storage groups (``storage_group`` is ""), database
  "Mailbox Database (EXCH01)" under ``CN=Databases`` of that administrative group.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import NamedTuple, TypeVar

from remediate.errors import InputError
from remediate.gcpolicy import building
from remediate.model import ExchangeVersion, MailboxKind, utc
from remediate.recipient import home_mta

from .exchange import FakeMailbox
from .world import FakeWorld
from .worldfile import FORMAT, WorldAssembler

Json = dict[str, object]
M = TypeVar("M")
Path = tuple[str, ...]
"""An object's escaped RDNs from the top of the domain down: ("OU=Staff", "CN=Ann Berg 1")."""

DOMAIN = "corp.example"
BASE_DN = "DC=corp,DC=example"
ORGANISATION = "Corp"
VERSIONS: tuple[str, ...] = tuple(version.value for version in ExchangeVersion)

KB842101_OU = "OU=Migrated,OU=Staff," + BASE_DN
KB842101_SIBLING_OU = "OU=Migrated2,OU=Staff," + BASE_DN
KB842101_CREATED_AFTER = "2026-11-01T10:00:00Z"
KB842101_CREATED_BEFORE = "2026-11-01T12:00:00Z"
KB278447_UPGRADED_AT = "2026-10-31T22:00:00Z"
# The failed upgrade's window as an operator would give it (-p disconnected_after/before).
KB278447_WINDOW = {
    "disconnected_after": "2026-10-31T20:00:00Z",
    "disconnected_before": "2026-11-01T06:00:00Z",
}
# The evidence cases kb278447(cases=...) can add (see _add_kb278447_case).
KB278447_CASES = (
    "departed",
    "conflict",
    "never-created",
    "half-done",
    "repaired",
    "big-blank",
    "empty-blank",
    "free-busy-items",
)
_DEPARTED_AT = "2026-10-20T16:00:00Z"  # a leaver's account deleted: his mailbox disconnected
_REHIRED_AT = "2026-10-26T09:00:00Z"  # the new hire who re-uses his alias
_LAST_SEEN_BEFORE_UPGRADE = "2026-10-31T17:30:00Z"
_BLANK_CREATED_AT = "2026-11-01T07:45:00Z"  # first logon or delivery after the upgrade
_STRIPPED_BY_HAND_AT = "2026-11-03T10:00:00Z"
_REPAIRED_BY_HAND_AT = "2026-11-05T10:00:00Z"
FREE_BUSY_NAME = "SCHEDULE+ FREE BUSY"
_KB842101_VERSION = "2003"  # the default Exchange version of each scenario
_KB278447_VERSION = "2000"

_SECOND_SERVER_FROM_SIZE = 200
_THIRD_DC_FROM_SIZE = 50
_MOST_SERVERS = 99  # EXCH01..EXCH99
_LEGACY_ADMIN_GROUP = "First Administrative Group"
_MODERN_ADMIN_GROUP = "Exchange Administrative Group (FYDIBOHF23SPDLT)"
_OU_CREATED = "2024-01-15T09:00:00Z"
_STAFF_HIRED_FROM = "2025-01-06T08:00:00Z"
_STAFF_HIRING_SECONDS = 350 * 86400

_FIRST_NAMES = (
    "Ann", "Ben", "Carla", "Dev", "Emma", "Farid", "Greta", "Hiro", "Ines", "Jon",
    "Kemal", "Lena", "Mia", "Nils", "Olga", "Pavel", "Rosa", "Sven", "Tara", "Uma",
)  # fmt: skip
_LAST_NAMES = (
    "Adler", "Berg", "Costa", "Dietz", "Evans", "Fuchs", "Garcia", "Huber", "Ito", "Jansen",
    "Kaur", "Lund", "Moreau", "Novak", "Okafor", "Peters", "Quinn", "Roth", "Silva", "Weber",
)  # fmt: skip
_NAMES = tuple((first, last) for first in _FIRST_NAMES for last in _LAST_NAMES)

# (name template, logon-name stem); {n} keeps every CN unique. All are legal in AD: cn holds at
# most 64 characters (its rangeUpper), displayName up to 256, so the long name is 200 characters
# as displayName and its first 64 as CN. Logon names avoid the characters sAMAccountName forbids
# but keep ' $ ` (legal there and in an alias, and hostile to scripts).
_HOSTILE_NAMES: tuple[tuple[str, str], ...] = (
    ("O'Brien, Seán {n}", "o'brien"),
    ('Smith, "Smitty" {n}', "smitty"),
    ("Star *()\\ {n}", "star"),
    ("\u2018Curly\u2019 \u201bQuotes\u201a {n}", "curly"),
    ("$(whoami) {n}", "$whoami"),
    ("`whoami` {n}", "`whoami`"),
    ("#Hash+Plus;Semi<Angle>=Equals {n}", "hash"),
    ("Hubert {n} Blaine" + " Wolfeschlegelsteinhausenbergerdorff" * 6, "hubert"),
)
_LONG_NAME_LENGTH = 200
_CN_MAX_LENGTH = 64

_FOLDERS = ("Inbox",) * 6 + ("Sent Items",) * 2 + ("Deleted Items", "Calendar")
_SUBJECTS = (
    "Quarterly report",
    "Re: budget 2027",
    "Lunch on Friday?",
    "Fwd: travel plans",
    "Meeting notes",
    'Re: "final" numbers',
    "O'Malley's at 6",
    "$(Get-Process) output",
    "`whoami` test",
    "Out of office \u2018holiday\u2019",
    "50% off; <b>sale</b> & more",
    "Invoice #4711",
)
_NEW_SUBJECTS = ("Welcome back", "Re: are you receiving mail?", "Status update")
_MAIL_TABLE_LENGTH = 1009
_ITEM_NUMBERS = tuple(f"{number:03d}" for number in range(1, 1000))

# uuid.UUID(int=bits, version=4) without building UUID objects (hundreds of thousands of them).
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)
_DN_ESCAPES = str.maketrans({char: "\\" + char for char in ',+"\\<>;='} | {"\0": "\\00"})


class ScenarioError(InputError, ValueError):
    """A scenario was asked for with a bad size or version."""


class Topology(NamedTuple):
    """Where the servers read AD, instead of a scenario's default layout (one or two servers by
    size, all reading DC2 of DC1..DC3). ``lags``: the replication delay of DC2, DC3, ... in
    seconds (DC1, where writes land, has none); ``servers``: EXCH01..EXCHnn, the n-th reading
    the n-th lagging DC (round robin; DC1 when there is none). Users are spread over the
    servers' stores round robin."""

    servers: int
    lags: tuple[float, ...]

    def checked(self) -> Topology:
        if (
            isinstance(self.servers, bool)
            or not isinstance(self.servers, int)
            or not (1 <= self.servers <= 99)
        ):
            raise ScenarioError(f"topology: servers must be 1..99, got {self.servers!r}")
        for lag in self.lags:
            if not (isinstance(lag, int | float) and 0 <= lag <= 30 * 86400):
                raise ScenarioError(f"topology: each lag must be 0..2592000 seconds, got {lag!r}")
        return self

    def to_json(self) -> Json:
        return {"servers": self.servers, "lags": list(self.lags)}


def escape_rdn_value(value: str) -> str:
    """``value`` escaped for a DN as RFC 4514 (and AD) require."""
    escaped = value.translate(_DN_ESCAPES)
    if value.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    if value.startswith(("#", " ")) and value != " ":
        escaped = "\\" + escaped
    return escaped


def _iso(moment: datetime) -> str:
    """A UTC datetime as ``2026-11-01T10:02:00Z`` (faster than strftime, called per object)."""
    return moment.isoformat(timespec="seconds")[:19] + "Z"


def _dn(path: Path) -> str:
    return ",".join(reversed(path)) + "," + BASE_DN


@dataclass(frozen=True, slots=True)
class _Store:
    server: str
    name: str
    storage_group: str
    dn: str
    admin_group: str

    @property
    def home_server_name(self) -> str:
        return _home_server_name(self.admin_group, self.server)


@cache  # one string per server, shared by every user homed there (not one per user)
def _home_server_name(admin_group: str, server: str) -> str:
    return f"/o={ORGANISATION}/ou={admin_group}/cn=Configuration/cn=Servers/cn={server}"


class _Person(NamedTuple):
    cn: str
    display_name: str
    sam: str


class _User(NamedTuple):
    guid: str
    path: Path
    display_name: str
    legacy_dn: str
    store: _Store
    created: datetime
    mailbox_guid: str | None


class _WorldBuilder:
    """Collects objects and mailboxes; hands out GUIDs, names and stores in a fixed order.
    With an ``assembler`` each mailbox is read into a ``FakeMailbox`` as soon as it is made."""

    def __init__(
        self,
        name: str,
        size: int,
        seed: int,
        version: str,
        assembler: WorldAssembler | None = None,
        *,
        topology: Topology | None = None,
        servers: int | None = None,
    ) -> None:
        self.version = _checked_version(version)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ScenarioError(f"{name}: size must be an integer >= 1, got {size!r}")
        if servers is not None and (
            isinstance(servers, bool)
            or not isinstance(servers, int)
            or not 1 <= servers <= _MOST_SERVERS
        ):
            raise ScenarioError(
                f"{name}: servers must be an integer from 1 to {_MOST_SERVERS}, got {servers!r}"
            )
        self.servers = servers
        self.name, self.size, self.seed = name, size, seed
        self.rng = random.Random(f"{name}:{seed}")
        self._issued: set[int] = set()
        self._objects: list[tuple[Path, Json]] = []
        self._assembler = assembler
        # By store DN: (GUID, mailbox) as JSON, or as read by the assembler.
        self._mailboxes: dict[str, list[tuple[str, Json]]] = {}
        self._read: dict[str, list[tuple[str, FakeMailbox]]] = {}
        self._serial = 0
        self._hostile = 0
        self.stores_used = 0
        self.topology = None if topology is None else Topology(*topology).checked()
        if self.topology is None:
            count = servers or (2 if size >= _SECOND_SERVER_FROM_SIZE else 1)
            names = [f"EXCH{number:02d}" for number in range(1, count + 1)]
            self.dcs: list[Json] = [
                {"name": "DC1", "replication_delay_s": 0},
                {"name": "DC2", "replication_delay_s": 900},
            ]
            if size >= _THIRD_DC_FROM_SIZE:
                self.dcs.append({"name": "DC3", "replication_delay_s": 300})
            # The lagging DC: the cleanup agent sees deletions only after 15 minutes.
            self.server_dcs = dict.fromkeys(names, "DC2")
        else:
            names = [f"EXCH{number:02d}" for number in range(1, self.topology.servers + 1)]
            lags = self.topology.lags
            self.dcs = [{"name": "DC1", "replication_delay_s": 0}] + [
                {"name": f"DC{number}", "replication_delay_s": lag}
                for number, lag in enumerate(lags, start=2)
            ]
            self.server_dcs = {
                server: f"DC{index % len(lags) + 2}" if lags else "DC1"
                for index, server in enumerate(names)
            }
        self.stores = [self._store_of(server) for server in names]
        # Each mailbox reads one world-wide random (folder, subject) sequence from a random
        # offset: one draw per mailbox rather than two per item keeps size 100,000 fast.
        pick = self.rng.choice
        self._old_mail = tuple((pick(_FOLDERS), pick(_SUBJECTS)) for _ in range(_MAIL_TABLE_LENGTH))
        self._new_mail = tuple(("Inbox", pick(_NEW_SUBJECTS)) for _ in range(_MAIL_TABLE_LENGTH))

    # -- random choices -----------------------------------------------------------------------

    def guid(self) -> str:
        """A fresh version-4 GUID, never one handed out before in this world."""
        while True:
            value = self.rng.getrandbits(128) & _V4_CLEAR | _V4_SET
            if value not in self._issued:
                self._issued.add(value)
                text = f"{value:032x}"
                return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def between(self, low: int, high: int) -> int:
        """An integer in ``[low, high]`` (``randint`` is several times slower)."""
        return low + int(self.rng.random() * (high - low + 1))

    def person(self, *, hostile: bool) -> _Person:
        """A new user's names; ``hostile`` takes the next name of :data:`_HOSTILE_NAMES`."""
        self._serial += 1
        serial = self._serial
        if hostile:
            template, stem = _HOSTILE_NAMES[self._hostile % len(_HOSTILE_NAMES)]
            self._hostile += 1
            display = template.format(n=serial)[:_LONG_NAME_LENGTH].rstrip()
            return _Person(display[:_CN_MAX_LENGTH].rstrip(), display, f"{stem}{serial}")
        first, last = _NAMES[int(self.rng.random() * len(_NAMES))]
        name = f"{first} {last} {serial}"  # the serial keeps CNs unique within an OU
        return _Person(name, name, f"{first[0]}{last}{serial}".lower())

    # -- directory ----------------------------------------------------------------------------

    def add_object(
        self,
        path: Path,
        object_class: str,
        created: datetime,
        attributes: Json,
        *,
        guid: str | None = None,
        protected: bool = False,
        binary: Json | None = None,
    ) -> str:
        guid = guid or self.guid()
        entry: Json = {
            "dn": _dn(path),
            "object_class": object_class,
            "guid": guid,
            "when_created": _iso(created),
            "protected": protected,
            "attributes": attributes,
        }
        if binary:
            entry["binary"] = binary
        self._objects.append((path, entry))
        return guid

    def add_ou(self, path: Path) -> Path:
        """An OU (protected from accidental deletion, as ADUC creates them)."""
        name = path[-1].partition("=")[2]
        self.add_object(path, "organizationalUnit", utc(_OU_CREATED), {"ou": name}, protected=True)
        return path

    def add_user(
        self,
        ou: Path,
        person: _Person,
        created: datetime,
        *,
        guid: str | None = None,
        mailbox_guid: str | None = None,
        stripped: bool = False,
        settings: Callable[[str], tuple[Json, Json]] | None = None,
    ) -> _User:
        """A mailbox-enabled user homed on the next store (round robin over the servers);
        ``msExchMailboxGuid`` only when ``mailbox_guid`` is given; ``settings(alias)``: more
        recipient attributes (they replace the defaults) and binary ones (base64). ``stripped``:
        his Exchange attributes removed (Exchange Tasks > Delete Mailbox), his account and names
        kept, so ``settings`` do not reach him."""
        store = self.stores[self.stores_used % len(self.stores)]
        self.stores_used += 1
        alias = person.sam
        legacy_dn = f"/o={ORGANISATION}/ou={store.admin_group}/cn=Recipients/cn={alias}"
        attributes: Json = {
            "sAMAccountName": person.sam,
            "userPrincipalName": f"{person.sam}@{DOMAIN}",
            "displayName": person.display_name,
            "mailNickname": alias,
            "mail": f"{alias}@{DOMAIN}",
            "proxyAddresses": [f"SMTP:{alias}@{DOMAIN}"],
            "legacyExchangeDN": legacy_dn,
            "homeMDB": store.dn,
            "msExchHomeServerName": store.home_server_name,
        }
        if mailbox_guid is not None:
            attributes["msExchMailboxGuid"] = mailbox_guid
        binary: Json = {}
        if settings is not None:
            more, binary = settings(alias)
            attributes |= more
        if stripped:
            # The strip cleared every Exchange attribute, binary ones included.
            attributes = {
                key: attributes[key]
                for key in ("sAMAccountName", "userPrincipalName", "displayName")
            }
            binary = {}
        path = (*ou, "CN=" + escape_rdn_value(person.cn))
        guid = self.add_object(path, "user", created, attributes, guid=guid, binary=binary)
        return _User(guid, path, person.display_name, legacy_dn, store, created, mailbox_guid)

    def attributes_of(self, user: _User) -> dict[str, object]:
        """The attributes of ``user``'s object document (to add some after :meth:`add_user`)."""
        for path, entry in reversed(self._objects):
            attributes = entry["attributes"]
            if path == user.path and isinstance(attributes, dict):
                return attributes
        raise ValueError(f"no object at {user.path}")

    def guids_of(self, object_class: str) -> list[str]:
        return [
            str(entry["guid"])
            for _, entry in self._objects
            if entry["object_class"] == object_class
        ]

    # -- exchange -----------------------------------------------------------------------------

    def items(self, mailbox_guid: str, count: int, *, new: bool = False) -> list[Json]:
        """``count`` messages (``new``: received after the upgrade, in the Inbox); item ids are
        unique and stable: the mailbox GUID and a number."""
        table = self._new_mail if new else self._old_mail
        start = int(self.rng.random() * len(table))
        rows = table[start : start + count]
        rows += table[: count - len(rows)]
        prefix = f"msg-{mailbox_guid}-"
        return [
            {"id": prefix + number, "folder": folder, "subject": subject}
            for number, (folder, subject) in zip(_ITEM_NUMBERS, rows, strict=False)
        ]

    def add_mailbox(
        self,
        store: _Store,
        guid: str,
        legacy_dn: str,
        display_name: str,
        items: list[Json],
        *,
        disconnected_at: str | None = None,
        created_at: str | None = None,
        last_logon_at: str | None = None,
    ) -> str:
        mailbox: Json = {
            "guid": guid,
            "legacy_dn": legacy_dn,
            "display_name": display_name,
            "disconnected_at": disconnected_at,
        }
        if created_at is not None:
            mailbox["created_at"] = created_at
        if last_logon_at is not None:
            mailbox["last_logon_at"] = last_logon_at
        mailbox["items"] = items
        if self._assembler is None:
            self._mailboxes.setdefault(store.dn, []).append((guid, mailbox))
        else:
            self._read.setdefault(store.dn, []).append((guid, self._assembler.mailbox(mailbox)))
        return guid

    def add_user_mailbox(
        self,
        user: _User,
        guid: str,
        items: list[Json],
        *,
        disconnected_at: str | None = None,
        created_at: str | None = None,
        last_logon_at: str | None = None,
    ) -> str:
        """A mailbox the store made for ``user``: his legacy DN and display name."""
        return self.add_mailbox(
            user.store,
            guid,
            user.legacy_dn,
            user.display_name,
            items,
            disconnected_at=disconnected_at,
            created_at=created_at,
            last_logon_at=last_logon_at,
        )

    def services(self) -> dict[str, str]:
        names = (*self.version.transport_services, "MSExchangeIS")
        return {name: "running" for name in sorted(names)}

    # -- output -------------------------------------------------------------------------------

    def document(self, scenario: Json) -> Json:
        """The world file; objects parents first (sorted by their RDNs from the top down),
        mailboxes by GUID."""
        ordered = sorted(self._objects, key=lambda pair: tuple(rdn.lower() for rdn in pair[0]))
        self._objects = []
        return {
            "format": FORMAT,
            "scenario": scenario,
            "directory": {
                "domain": DOMAIN,
                "base_dn": BASE_DN,
                "dcs": self.dcs,
                "objects": [entry for _, entry in ordered],
            },
            "exchange": {"servers": [self._server(store) for store in self.stores]},
        }

    def fake_world(self, scenario: Json) -> FakeWorld:
        """The world :meth:`document` describes, its mailboxes those read as they were made."""
        if self._assembler is None:
            raise ValueError("fake_world() needs a builder made with an assembler")
        document = self.document(scenario)
        read = {dn: _by_guid(boxes) for dn, boxes in self._read.items()}
        self._read = {}
        return self._assembler.world(document, read)

    def _server(self, store: _Store) -> Json:
        # Mailboxes read as they were made go to the assembler beside the document.
        mailboxes = _by_guid(self._mailboxes.get(store.dn, []))
        return {
            "name": store.server,
            "version": self.version.value,
            "dc": self.server_dcs[store.server],
            # What its users' msExchHomeServerName names (the fakes' default is another name).
            "legacy_dn": store.home_server_name,
            "services": self.services(),
            "stores": [
                {
                    "name": store.name,
                    "storage_group": store.storage_group,
                    "dn": store.dn,
                    "mailboxes": mailboxes,
                }
            ],
        }

    def _store_of(self, server: str) -> _Store:
        admin_group = _LEGACY_ADMIN_GROUP if self.version.legacy else _MODERN_ADMIN_GROUP
        group_dn = (
            f"CN={escape_rdn_value(admin_group)},CN=Administrative Groups,CN={ORGANISATION},"
            f"CN=Microsoft Exchange,CN=Services,CN=Configuration,{BASE_DN}"
        )
        if self.version.legacy or self.version is ExchangeVersion.E2007:
            name = (
                f"Mailbox Store ({server})"
                if self.version.legacy
                else f"Mailbox Database ({server})"
            )
            storage_group = "First Storage Group"
            parent = f"CN={storage_group},CN=InformationStore,CN={server},CN=Servers,{group_dn}"
        else:
            name, storage_group = f"Mailbox Database ({server})", ""
            parent = f"CN=Databases,{group_dn}"
        return _Store(
            server, name, storage_group, f"CN={escape_rdn_value(name)},{parent}", admin_group
        )


def _by_guid(mailboxes: list[tuple[str, M]]) -> list[M]:
    return [mailbox for _, mailbox in sorted(mailboxes, key=lambda pair: pair[0])]


def _checked_version(version: str) -> ExchangeVersion:
    try:
        return ExchangeVersion(version)
    except ValueError:
        raise ScenarioError(
            f"unknown Exchange version {version!r}; valid versions: {', '.join(VERSIONS)}"
        ) from None


def _hostile(index: int, count: int) -> bool:
    """Whether the ``index``-th of ``count`` users gets a hostile name: the first user, then
    every other one in a small group, one of each spread through a large one."""
    stride = max(2, count // len(_HOSTILE_NAMES))
    return index % stride == 0 and index // stride < len(_HOSTILE_NAMES)


def _spread(start: datetime, seconds: int, index: int, count: int) -> datetime:
    """The ``index``-th of ``count`` instants spread evenly over ``seconds`` from ``start``."""
    return start + timedelta(seconds=(index * seconds) // count)


def _initialization_states(size: int, rng: random.Random) -> list[str]:
    """About 40% initialized with mail, 20% initialized but empty, the rest never initialized;
    every state present once there are three users, shuffled."""
    with_mail = max(1, round(size * 0.4))
    empty = min(size - with_mail, max(1, round(size * 0.2)))
    never = size - with_mail - empty
    if never == 0 and size >= 3:
        with_mail, never = with_mail - 1, 1
    states = ["mail"] * with_mail + ["empty"] * empty + ["never"] * never
    rng.shuffle(states)
    return states


def _scenario(world: _WorldBuilder, parameters: dict[str, str], expected: Json) -> Json:
    block: Json = {
        "name": world.name,
        "seed": world.seed,
        "size": world.size,
        "version": world.version.value,
        **({"servers": world.servers} if world.servers is not None else {}),
        "parameters": parameters,
        "expected": expected,
    }
    if world.topology is not None:
        block["topology"] = world.topology.to_json()
    return block


@building()
def kb842101(
    size: int,
    seed: int,
    *,
    version: str = _KB842101_VERSION,
    topology: Topology | None = None,
    traps: bool = False,
    servers: int | None = None,
) -> Json:
    """A cancelled Migration Wizard run: ``size`` users it created in ``OU=Migrated`` inside the
    window (about 40% initialized with mail, 20% initialized but empty, the rest never
    initialized; one with an ActiveSync child object), among look-alikes that must stay: users of
    the same OU created a minute before and after the window, users of ``OU=Migrated2`` inside
    it, and staff hired in 2025, all with mail. ``servers``: as for :func:`kb278447`.

    A never-initialized user has no ``msExchMailboxGuid`` on 2000/2003 (the store stamps it on
    first access); on 2007 and later it has one (set when the mailbox is enabled) but the store
    holds no mailbox for it yet.
    """
    world = _WorldBuilder("kb842101", size, seed, version, topology=topology, servers=servers)
    return world.document(_fill_kb842101(world, traps=traps))


def _fill_kb842101(world: _WorldBuilder, *, traps: bool = False) -> Json:
    """Builds kb842101's world into ``world``; returns its scenario block. ``traps``: also the
    accounts of OU=Migrated that the scope matches but the run must keep (see
    :func:`_add_kb842101_traps`)."""
    size = world.size
    staff = world.add_ou(("OU=Staff",))
    migrated = world.add_ou((*staff, "OU=Migrated"))
    sibling = world.add_ou((*staff, "OU=Migrated2"))
    window_start = utc(KB842101_CREATED_AFTER)
    window_seconds = int((utc(KB842101_CREATED_BEFORE) - window_start).total_seconds())
    inside, inside_seconds = window_start + timedelta(seconds=30), window_seconds - 60

    deleted: list[str] = []
    purged: list[str] = []
    exported: list[str] = []
    states = _initialization_states(size, world.rng)
    with_child = world.rng.choice([index for index, state in enumerate(states) if state == "mail"])
    for index, state in enumerate(states):
        has_guid = state != "never" or not world.version.legacy
        user = world.add_user(
            migrated,
            world.person(hostile=_hostile(index, size)),
            _spread(inside, inside_seconds, index, size),
            mailbox_guid=world.guid() if has_guid else None,
        )
        deleted.append(user.guid)
        if index == with_child:
            deleted.append(_add_sync_devices(world, user))
        if state != "never":
            count = world.between(1, 25) if state == "mail" else 0
            purged.append(_connected_mailbox(world, user, count))
            if count:
                exported.append(purged[-1])

    untouched: list[str] = world.guids_of("organizationalUnit")
    untouched_mailboxes: list[str] = []
    lookalikes = max(1, size // 50)
    window_end = window_start + timedelta(seconds=window_seconds)
    groups = (
        (migrated, window_start - timedelta(minutes=1), 0, lookalikes),
        (migrated, window_end + timedelta(minutes=1), 0, lookalikes),
        (sibling, inside, inside_seconds, lookalikes),
        (staff, utc(_STAFF_HIRED_FROM), _STAFF_HIRING_SECONDS, max(3, size // 10)),
    )
    for group, (ou, start, seconds, count) in enumerate(groups):
        for index in range(count):
            user = world.add_user(
                ou,
                world.person(hostile=_hostile(index, count)),
                _spread(start, seconds, index, count),
                mailbox_guid=world.guid(),
            )
            untouched.append(user.guid)
            untouched_mailboxes.append(_connected_mailbox(world, user, world.between(1, 25)))
            if group == 1 and index == 0:  # a look-alike's child must survive too
                untouched.append(_add_sync_devices(world, user))

    parameters = {
        "ou": KB842101_OU,
        "created_after": KB842101_CREATED_AFTER,
        "created_before": KB842101_CREATED_BEFORE,
    }
    expected: Json = {
        "deleted_guids": sorted(deleted),
        "purged_mailboxes": sorted(purged),
        "exported_mailboxes": sorted(exported),
        "untouched_guids": sorted(untouched),
        "untouched_mailboxes": sorted(untouched_mailboxes),
    }
    if traps:
        trapped = _add_kb842101_traps(world, migrated, inside)
        expected.update(trapped)
        expected["untouched_guids"] = sorted(
            [*untouched, *trapped["kept_guids"], *trapped["matched_guids"]]
        )
        expected["untouched_mailboxes"] = sorted(
            [*untouched_mailboxes, *trapped["kept_mailboxes"], *trapped["matched_mailboxes"]]
        )
    return _scenario(world, parameters, expected)


# The domain's SID (objectSid of the domain head); an account's objectSid is it plus the RID.
DOMAIN_SID = "S-1-5-21-1004336348-1177238915-682003330"
_FIRST_RID = 1105


def _add_kb842101_traps(
    world: _WorldBuilder, migrated: Path, inside: datetime
) -> dict[str, list[str]]:
    """Accounts of OU=Migrated that the cancelled run did not create, each with a mailbox, and
    how they look in AD (research/exchange_ad_facts.md §5.6, §12; KB297349):

    - an account migrated earlier with ADMT: it carries ``sIDHistory`` (the source domain's
      SID) and the wizard matched it instead of creating one; made inside the window here, as
      when ADMT ran in the same change window just before the wizard;
    - ``isCriticalSystemObject=TRUE`` (MS-ADTS 3.1.1.1.17) and ``adminCount=1`` (AdminSDHolder,
      MS-ADTS 3.1.1.6.1) users and one with a well-known RID (501, Guest's; MS-DTYP 2.4.2.4),
      all inside the window: only those attributes say they must stay;
    - an existing account the wizard matched by logon name, and a contact it turned into a
      user: both created in 2025, their mailbox created inside the window
      (``msExchWhenMailboxCreated``, which Exchange 2007 and later stamp; on 2000/2003 [U] no
      attribute records it). How the wizard turns a contact into a user is not documented
      [U]: modelled as the object (and its whenCreated) staying, mail-enabled by the run.

    Returns the expected block's additions: ``kept_guids`` (never touched), ``matched_guids``
    (only their mailbox goes, with mailbox_only=true), ``kept_mailboxes``, ``matched_mailboxes``.
    """
    window_mailbox = _iso(inside + timedelta(minutes=7))
    rid = iter(range(_FIRST_RID, _FIRST_RID + 100))
    traps: list[tuple[str, Json, datetime]] = [
        ("kept", {"sIDHistory": "S-1-5-21-3623811015-3361044348-30300820-1013"}, inside),
        ("kept", {"isCriticalSystemObject": "TRUE"}, inside),
        ("kept", {"adminCount": "1"}, inside),
        ("kept", {"objectSid": f"{DOMAIN_SID}-501"}, inside),
        ("matched", {"msExchWhenMailboxCreated": window_mailbox}, utc(_STAFF_HIRED_FROM)),
        (
            "matched",
            {
                "msExchWhenMailboxCreated": window_mailbox,
                "proxyAddresses": ["smtp:former.contact@partner.example"],
            },
            utc(_STAFF_HIRED_FROM) + timedelta(days=30),
        ),
    ]
    block: dict[str, list[str]] = {
        "kept_guids": [],
        "matched_guids": [],
        "kept_mailboxes": [],
        "matched_mailboxes": [],
    }
    for kind, extra, created in traps:
        user = world.add_user(
            migrated, world.person(hostile=False), created, mailbox_guid=world.guid()
        )
        attributes = world.attributes_of(user)
        attributes.setdefault("objectSid", f"{DOMAIN_SID}-{next(rid)}")
        for name, value in extra.items():
            current = attributes.get(name)
            if isinstance(value, list) and isinstance(current, list):
                attributes[name] = [*current, *value]
            else:
                attributes[name] = value
        block[f"{kind}_guids"].append(user.guid)
        box = _connected_mailbox(world, user, world.between(1, 25))
        block[f"{kind}_mailboxes"].append(box)
    return {key: sorted(values) for key, values in block.items()}


@building()
def kb278447(
    size: int,
    seed: int,
    *,
    version: str = _KB278447_VERSION,
    cases: tuple[str, ...] = (),
    topology: Topology | None = None,
    servers: int | None = None,
) -> Json:
    """A failed 5.5 -> 2000 upgrade: ``size`` users stamped with a random ``msExchMailboxGuid``,
    connected to a new blank mailbox (1-3 new items) while their original (GUID == objectGUID,
    5-30 old items) is disconnected; about ``size / 2`` healthy users; one ambiguous user (two
    disconnected candidates by legacy DN, neither with his objectGUID); the legacy
    Schedule+ Free/Busy mailbox, disconnected and owned by no one. ``servers``: how many
    Exchange servers the users are spread over (round robin; None: one, two from size 200).

    ``cases`` (of :data:`KB278447_CASES`) add, each with its own users, what decides by evidence
    (see :func:`_add_kb278447_case`); their expectations are in ``expected["cases"]``."""
    world = _WorldBuilder("kb278447", size, seed, version, topology=topology, servers=servers)
    return world.document(_fill_kb278447(world, _known_cases(cases)))


def _fill_kb278447(world: _WorldBuilder, cases: tuple[str, ...] = ()) -> Json:
    """Builds kb278447's world into ``world``; returns its scenario block."""
    size = world.size
    staff = world.add_ou(("OU=Staff",))
    hired = utc(_STAFF_HIRED_FROM)

    affected: list[Json] = []
    previous: str | None = None
    for index in range(size):
        original, blank = world.guid(), world.guid()
        settings = _RecipientSettings(world, index, previous)
        user = world.add_user(
            staff,
            world.person(hostile=_hostile(index, size)),
            _spread(hired, _STAFF_HIRING_SECONDS, index, size),
            guid=original,
            mailbox_guid=blank,
            settings=settings,
        )
        previous = _dn(user.path)
        old = _disconnected_mailbox(world, user, original, settings.original_legacy_dn)
        new = world.items(blank, world.between(1, 3), new=True)
        world.add_user_mailbox(user, blank, new)
        affected.append({
            "user": user.guid,
            "original": original,
            "blank": blank,
            # Counts, not ids: the ids are the mailboxes' own (held as JSON here, they would
            # keep a world's mail item strings in memory for the whole run).
            "old_items": len(old),
            "new_items": len(new),
        })  # fmt: skip

    healthy: list[str] = []
    healthy_count = max(1, size // 2)
    for index in range(healthy_count):
        guid = world.guid()
        user = world.add_user(
            staff,
            world.person(hostile=_hostile(index, healthy_count)),
            _spread(hired, _STAFF_HIRING_SECONDS, index, healthy_count),
            guid=guid,
            mailbox_guid=guid,
        )
        _connected_mailbox(world, user, world.between(5, 30))
        healthy.append(user.guid)

    ambiguous = _ambiguous_user(world, staff, hired)
    free_busy_guid = world.guid()
    free_busy = world.add_mailbox(
        world.stores[0],
        free_busy_guid,
        f"/o={ORGANISATION}/ou={world.stores[0].admin_group}/cn=Recipients/cn={FREE_BUSY_NAME}",
        FREE_BUSY_NAME,
        world.items(free_busy_guid, 4) if "free-busy-items" in cases else [],
        disconnected_at=KB278447_UPGRADED_AT,
    )
    expected: Json = {
        "affected": sorted(affected, key=lambda entry: str(entry["user"])),
        "healthy_guids": sorted(healthy),
        "ambiguous_guids": [ambiguous["user"]],
        "ambiguous": [ambiguous],
        "free_busy_mailbox": free_busy,
        "services": {store.server: world.services() for store in world.stores},
    }
    if cases:
        made = {case: _add_kb278447_case(world, staff, case) for case in cases}
        if "free-busy-items" in cases:
            made["free-busy-items"] = {"mailbox": free_busy}
        expected["cases"] = made
    return _scenario(world, {}, expected)


def _connected_mailbox(world: _WorldBuilder, user: _User, count: int) -> str:
    """The mailbox the user's msExchMailboxGuid names, holding ``count`` items."""
    if user.mailbox_guid is None:
        raise ValueError(f"{user.path[-1]} has no msExchMailboxGuid to name a mailbox")
    return world.add_user_mailbox(user, user.mailbox_guid, world.items(user.mailbox_guid, count))


def _disconnected_mailbox(
    world: _WorldBuilder, user: _User, guid: str, legacy_dn: str | None = None
) -> list[Json]:
    """A mailbox of ``user`` (his legacy DN, or ``legacy_dn``) the failed upgrade disconnected;
    5-30 old items."""
    items = world.items(guid, world.between(5, 30))
    world.add_mailbox(
        user.store,
        guid,
        legacy_dn or user.legacy_dn,
        user.display_name,
        items,
        disconnected_at=KB278447_UPGRADED_AT,
    )
    return items


# Exchange's own GUID for "exclude from every email address policy" (msExchPoliciesExcluded):
# a user with a primary address of his own is not subject to the policy, or it would replace it.
_NO_POLICY = "{26491cfc-9e50-4857-861b-0cb8df22b5d7}"
# A mailbox security descriptor with one Full Access grant (a self-relative SECURITY_DESCRIPTOR
# header and an ACE; the bytes stand for what ADUC's Mailbox Rights tab writes).
_MAILBOX_RIGHTS = bytes.fromhex(
    "01000480140000002000000000000000"
    "2c000000010100000000000512000000"
    "01010000000000051200000002001c00"
    "010000000000140001000200010100000000000512000000"
)
_LINKED_MASTER_SID = bytes.fromhex("010500000000000515000000a1b2c3d4e5f60718293a4b5c51040000")


class _RecipientSettings:
    """What a user of a failed upgrade holds beyond the policy's addresses, by ``index``: every
    one a secondary SMTP address, an X500 of an Exchange 5.5 site and an X.400 address; in
    turn hidden from address lists with an extension attribute, a delegate and forwarding, own
    quotas, sender restrictions and mailbox rights, an own primary address (excluded from the
    policy); on 2007+ a mailbox type (shared, room, equipment, linked) and on 2010+ an archive.
    Every fifth user's original mailbox carries the Exchange 5.5 legacyExchangeDN, so the
    reconnect changes his (replies to old mail then need an X500 of the one he had)."""

    def __init__(self, world: _WorldBuilder, index: int, previous: str | None) -> None:
        self.world, self.index, self.previous = world, index, previous
        # add_user homes users round robin: this one goes to the next store.
        self.store_dn = world.stores[world.stores_used % len(world.stores)].dn
        self.original_legacy_dn: str | None = None

    def __call__(self, alias: str) -> tuple[Json, Json]:
        index, previous, version = self.index, self.previous, self.world.version
        site55 = f"/o={ORGANISATION}/ou=Site55/cn=Recipients/cn={alias}"
        primary = f"{alias}@{DOMAIN}"
        attributes: Json = {}
        binary: Json = {}
        if index % 4 == 1:
            primary = f"{alias}.own@{DOMAIN}"
            attributes["msExchPoliciesExcluded"] = _NO_POLICY
        attributes["mail"] = primary
        if version.legacy:  # what Exchange 2000/2003 stamp on a mailbox user
            attributes["homeMTA"] = home_mta(self.store_dn) or ""
        attributes["proxyAddresses"] = [
            f"SMTP:{primary}",
            f"smtp:{alias}@old.{DOMAIN}",
            f"X500:{site55}",
            f"X400:c=US;a= ;p={ORGANISATION};o=Exchange;s={alias};",
        ] + ([f"smtp:{alias}@{DOMAIN}"] if index % 4 == 1 else [])
        if index % 5 == 4:
            self.original_legacy_dn = site55
        if index % 3 == 0:
            attributes |= {
                "msExchHideFromAddressLists": "TRUE",
                "extensionAttribute1": f"cost centre {index}",
            }
        elif index % 3 == 1 and previous is not None:
            attributes |= {
                "publicDelegates": [previous],
                "altRecipient": previous,
                "deliverAndRedirect": "TRUE",
            }
        elif index % 3 == 2:
            attributes |= {
                "mDBUseDefaults": "FALSE",
                "mDBStorageQuota": "400000",
                "mDBOverQuotaLimit": "450000",
                "mDBOverHardQuotaLimit": "500000",
            }
            if previous is not None:
                attributes["authOrig"] = [previous]
            binary["msExchMailboxSecurityDescriptor"] = [
                base64.b64encode(_MAILBOX_RIGHTS).decode("ascii")
            ]
        if not version.legacy:
            kind = self._kind()
            attributes["msExchRecipientTypeDetails"] = str(kind.type_details)
            if kind is MailboxKind.LINKED:
                binary["msExchMasterAccountSid"] = [
                    base64.b64encode(_LINKED_MASTER_SID).decode("ascii")
                ]
            if kind is MailboxKind.USER and version is not ExchangeVersion.E2007 and index % 4 == 0:
                attributes |= {
                    "msExchArchiveGUID": self.world.guid(),
                    "msExchArchiveName": f"Online Archive - {alias}",
                }
        return attributes, binary

    def _kind(self) -> MailboxKind:
        kinds = (
            MailboxKind.USER,
            MailboxKind.USER,
            MailboxKind.USER,
            MailboxKind.SHARED,
            MailboxKind.ROOM,
            MailboxKind.EQUIPMENT,
            MailboxKind.LINKED,
        )
        return kinds[self.index % len(kinds)]


def _ambiguous_user(world: _WorldBuilder, staff: Path, created: datetime) -> Json:
    """Connected to a blank mailbox; two disconnected mailboxes carry his legacy DN and neither
    has his objectGUID, so only an operator can say which is his."""
    blank = world.guid()
    user = world.add_user(staff, world.person(hostile=False), created, mailbox_guid=blank)
    world.add_user_mailbox(user, blank, world.items(blank, world.between(1, 3), new=True))
    candidates = sorted(world.guid() for _ in range(2))
    for candidate in candidates:
        _disconnected_mailbox(world, user, candidate)
    return {"user": user.guid, "blank": blank, "candidates": candidates}


def _add_kb278447_case(world: _WorldBuilder, staff: Path, case: str) -> Json:
    """One evidence case, with its own users; returns what must hold after a run.

    Where a case needs an original whose GUID is not the user's objectGUID it is a 5.5 GUID:
    after a 5.5 upgrade msExchMailboxGuid came from the 5.5 directory, while AD minted the
    objectGUIDs, so the two rarely match (research/exchange_ad_facts.md section 12)."""
    hired = utc(_STAFF_HIRED_FROM)
    seen = {"last_logon_at": _LAST_SEEN_BEFORE_UPGRADE}
    if case == "departed":
        # A leaver's account was deleted (his mailbox disconnected, in retention); his alias and
        # name went to a new hire created after that, on a new, small mailbox of his own.
        mailbox, departed = world.guid(), world.guid()
        rehired = world.add_user(
            staff, world.person(hostile=False), utc(_REHIRED_AT), mailbox_guid=mailbox
        )
        world.add_user_mailbox(
            rehired, mailbox, world.items(mailbox, 2, new=True), created_at=_REHIRED_AT
        )
        world.add_user_mailbox(  # the leaver's: the same alias and name, the same legacy DN
            rehired,
            departed,
            world.items(departed, world.between(5, 30)),
            disconnected_at=_DEPARTED_AT,
            created_at=_iso(hired),
            last_logon_at=_DEPARTED_AT,
        )
        return {"user": rehired.guid, "mailbox": mailbox, "departed_mailbox": departed}
    if case == "conflict":
        # His legacy DN names one disconnected mailbox, his objectGUID another (moved from an
        # old 5.5 site): only an operator can say which holds his mail.
        blank = world.guid()
        user = world.add_user(staff, world.person(hostile=False), hired, mailbox_guid=blank)
        world.add_user_mailbox(user, blank, world.items(blank, 1, new=True))
        by_dn = world.add_user_mailbox(
            user, world.guid(), world.items(user.guid, 8), disconnected_at=KB278447_UPGRADED_AT
        )
        by_guid = world.add_mailbox(
            user.store,
            user.guid,
            user.legacy_dn.replace("/ou=", "/ou=Old Site ", 1),
            user.display_name,
            world.items(user.guid + "-old", 9),
            disconnected_at=KB278447_UPGRADED_AT,
        )
        return {"user": user.guid, "blank": blank, "candidates": sorted([by_dn, by_guid])}
    if case == "never-created":
        # Stamped with a random GUID, but no logon or mail since: the store never made the
        # blank mailbox; his original waits, disconnected.
        user = world.add_user(staff, world.person(hostile=False), hired, mailbox_guid=world.guid())
        items = world.items(user.guid, world.between(5, 30))
        world.add_user_mailbox(user, user.guid, items, disconnected_at=KB278447_UPGRADED_AT, **seen)
        return {"user": user.guid, "original": user.guid, "old_items": len(items)}
    if case == "half-done":
        # Someone stripped him by hand (the blank then disconnected too) and stopped there.
        original, blank = world.guid(), world.guid()
        user = world.add_user(
            staff, world.person(hostile=False), hired, guid=original, stripped=True
        )
        old = world.items(original, world.between(5, 30))
        world.add_user_mailbox(user, original, old, disconnected_at=KB278447_UPGRADED_AT, **seen)
        new = world.items(blank, world.between(1, 3), new=True)
        world.add_user_mailbox(
            user, blank, new, disconnected_at=_STRIPPED_BY_HAND_AT, created_at=_BLANK_CREATED_AT
        )
        return {
            "user": user.guid,
            "original": original,
            "blank": blank,
            "old_items": len(old),
            "new_items": len(new),
        }
    if case == "repaired":
        # Repaired by hand before this tool: on his original (a 5.5 GUID), the old blank
        # disconnected with the few items it held.
        original = world.guid()
        user = world.add_user(staff, world.person(hostile=False), hired, mailbox_guid=original)
        world.add_user_mailbox(user, original, world.items(original, world.between(5, 30)), **seen)
        blank = world.add_user_mailbox(
            user,
            world.guid(),
            [],
            disconnected_at=_REPAIRED_BY_HAND_AT,
            created_at=_BLANK_CREATED_AT,
        )
        return {"user": user.guid, "original": original, "old_blank": blank}
    if case in ("big-blank", "empty-blank"):
        # big: weeks of mail reached the blank mailbox and the original (a 5.5 GUID) holds
        # less: only the failed upgrade's window tells which is which. empty: he logged on to
        # the blank (so the store made it), no mail reached it.
        original, blank = world.guid(), world.guid()
        user = world.add_user(staff, world.person(hostile=False), hired, mailbox_guid=blank)
        old = world.items(original, world.between(2, 4) if case == "big-blank" else 6)
        world.add_user_mailbox(
            user,
            original,
            old,
            disconnected_at=KB278447_UPGRADED_AT,
            created_at=_iso(hired),
            **seen,
        )
        count = world.between(40, 150) if case == "big-blank" else 0
        new = world.items(blank, count, new=True)
        world.add_user_mailbox(
            user, blank, new, created_at=_BLANK_CREATED_AT, last_logon_at=_BLANK_CREATED_AT
        )
        return {
            "user": user.guid,
            "original": original,
            "blank": blank,
            "old_items": len(old),
            "new_items": len(new),
        }
    return {}  # free-busy-items: the Free/Busy mailbox of the world holds items


def _add_sync_devices(world: _WorldBuilder, user: _User) -> str:
    """An ActiveSync container below ``user``: deleting the user takes a Tree Delete."""
    return world.add_object(
        (*user.path, "CN=ExchangeActiveSyncDevices"),
        "msExchActiveSyncDevices",
        user.created + timedelta(minutes=5),
        {},
    )


SCENARIOS: dict[str, Callable[..., Json]] = {"kb842101": kb842101, "kb278447": kb278447}
_FILLS: dict[str, tuple[Callable[[_WorldBuilder], Json], str]] = {  # each with its defaults
    "kb842101": (_fill_kb842101, _KB842101_VERSION),
    "kb278447": (_fill_kb278447, _KB278447_VERSION),
}


@building()
def scenario_world(
    name: str,
    size: int,
    seed: int,
    *,
    version: str | None = None,
    topology: Topology | None = None,
    servers: int | None = None,
    cases: tuple[str, ...] = (),
) -> FakeWorld:
    """The world ``SCENARIOS[name](size, seed, version=version, servers=servers, cases=cases)``
    describes (the same state, the same scenario block), built without that document: each
    mailbox is read into the world as it is made. ``version`` None: the builder's default;
    ``cases``: kb278447's only."""
    if name not in _FILLS:
        raise ScenarioError(f"no scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if cases and name != "kb278447":
        raise ScenarioError(f"{name} has no evidence cases (kb278447 has)")
    fill, default_version = _FILLS[name]
    assembler = WorldAssembler(source="scenario")
    world = _WorldBuilder(
        name,
        size,
        seed,
        version or default_version,
        assembler,
        topology=topology,
        servers=servers,
    )
    return world.fake_world(_fill_kb278447(world, _known_cases(cases)) if cases else fill(world))


def _known_cases(cases: tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(cases) - set(KB278447_CASES))
    if unknown:
        raise ScenarioError(
            f"unknown kb278447 case(s) {', '.join(unknown)}; known: {', '.join(KB278447_CASES)}"
        )
    return cases
