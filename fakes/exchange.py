"""An in-memory Exchange organisation implementing the ``Exchange`` port.

Each server reads AD through its own DC: a mailbox's owner is the user whose msExchMailboxGuid
names it *as that DC sees it*, and the cleanup agent marks mailboxes accordingly. A server given
a global catalog reads users through it instead (the Information Store's user lookups go through
DSAccess, which sends them to global catalogs: TechNet aa996262(v=exchg.65), "Understanding
Directory Access Options"), while its writes (Disable-Mailbox, Connect-Mailbox) still go to its
DC: a GC of another domain holds a read-only partial replica.

The recipient policy (see :mod:`fakes.policy`) stamps addresses when a mailbox is connected
(Exchange_Mailbox.Reconnect on 2003, Connect-Mailbox on 2007+) and on ``update_recipients``
(Update-Recipient): only the policy's addresses, so whatever the strip removed beyond them is
gone unless restored. On 2000/2003 ``update_recipients`` asks the operator for the Recipient
Update Service's "Update Now"; the fake plays neither that nor the service's own schedule (a
re-home through LDAP on Exchange 2000 gets no addresses from the fake's policy). Exchange
2000/2003 servers also run the cleanup agent by themselves every ``cleanup_interval_s`` of virtual
time (at multiples of it since the Unix epoch); no API triggers it there, so the port call asks
the operator.

Mail reaches a database only while something that delivers into it runs (written from
Microsoft's transport documentation, independently of the playbooks): on Exchange 2000/2003 the
MTA Stacks and SMTP of the server holding it; on 2007/2010 Microsoft Exchange Transport on any
Hub Transport server of the same version in its AD site (any one of them can deliver); on 2013
and later the Mailbox Transport Delivery service (MSExchangeDelivery) of the server holding it.
Otherwise the mail is held, and delivered when a deliverer runs again. A server whose own
transport is stopped (2000/2003: MTA or SMTP; later: Microsoft Exchange Transport) also holds
what is handed to it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import ClassVar, Literal, NamedTuple
from uuid import UUID

from remediate.dn import normalize
from remediate.errors import InputError, PermanentError
from remediate.model import (
    DISABLE_MAILBOX_ATTRIBUTES,
    HUB_TRANSPORT,
    ConnectAs,
    DirectoryEntry,
    ExchangeServer,
    ExchangeVersion,
    ExportRef,
    MailboxCopy,
    MailboxInfo,
    MailboxKind,
    MailItem,
    ServiceState,
    Store,
    mailbox_list_refusal,
)
from remediate.ports import ManualActionRequired
from remediate.recipient import recipient_update_instructions

from .directory import FakeDirectory
from .exports import MailSink, MemorySink
from .faults import Faults, Gate
from .packed import NO_ITEMS, ItemIds, PackedItems
from .policy import policy_stamp
from .replica import DcView
from .timeline import Timeline

Delivery = Literal["delivered", "queued", "undeliverable"]
# Where the fake's exports are: a run writes them to its run directory (fakes.exports).
FAKE_EXPORT_LOCATION = "`backups/mail/{server}/` in the run directory"
DEFAULT_CLEANUP_INTERVAL_S = 86400.0


@dataclass(frozen=True, slots=True)
class FakeMailbox:
    """A mailbox in a store (immutable: a change replaces it).

    ``created_at``: when the store created it. Exchange 2000/2003 create a mailbox on its first
    logon or delivery, not when the user is mail-enabled (www.msxfaq.de/server/mailboxguid.htm),
    so a user may point at a mailbox that does not exist yet. ``last_logon_at``: what the store
    reports as the last logon (Exchange 2003 SDK, Exchange_Mailbox.LastLogonTime, aa144762;
    MailboxStatistics.LastLogonTime, ff328750); None: never logged on to. A disconnected mailbox
    keeps both, and its items, until it is purged or its retention ends
    (IMailboxStoreDB.DaysBeforeDeletedMailboxCleanup; Set-MailboxDatabase -MailboxRetention).
    """

    guid: UUID
    legacy_dn: str
    display_name: str
    disconnected_at: datetime | None = None
    items: PackedItems = NO_ITEMS
    created_at: datetime | None = None
    last_logon_at: datetime | None = None
    # DisconnectReason SoftDeleted (2010+): what a mailbox move leaves in its source database
    # until the retention ends or Remove-StoreMailbox -MailboxState SoftDeleted purges it
    # (Remove-StoreMailbox.md); Connect-Mailbox does not take it, New-MailboxRestoreRequest reads
    # it (New-MailboxRestoreRequest.md). It keeps the moved mailbox's GUID.
    soft_deleted: bool = False

    @property
    def item_ids(self) -> ItemIds:
        # Shared by every observation; the strings are made only where they are read.
        return self.items.ids


@dataclass(slots=True)
class FakeStore:
    info: Store
    mailboxes: dict[UUID, FakeMailbox] = field(default_factory=dict)

    def copy_kind(self, mailbox: FakeMailbox) -> MailboxCopy:
        """Whether ``mailbox`` here is the mailbox itself or a copy sharing its GUID: every
        mailbox of a recovery storage group or recovery database is a restored copy (KB824126;
        Get-MailboxStatistics -Server lists recovery databases with the rest), and a
        soft-deleted one is a move's leftover."""
        if self.info.recovery:
            return MailboxCopy.RECOVERY
        return MailboxCopy.SOFT_DELETED if mailbox.soft_deleted else MailboxCopy.LIVE


class HeldMail(NamedTuple):
    """Mail waiting on a server whose transport is stopped."""

    recipient: str  # legacyExchangeDN
    item: MailItem


@dataclass(slots=True)
class FakeServer:
    info: ExchangeServer
    legacy_dn: str
    cleanup_interval_s: float
    services: dict[str, ServiceState]
    stores: dict[str, FakeStore] = field(default_factory=dict)  # by normalized store DN
    queue: list[HeldMail] = field(default_factory=list)
    # Why this server cannot export or import mail (None: it can, as fakes do by default). Set
    # where the world is a snapshot of a real server that cannot (Exchange 2007 over WinRM).
    mail_export_refusal: str | None = None
    # service -> the services that depend on it (Windows' DependentServices); none by default
    dependents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Where a real server's exports go (a snapshot of one says; export_location): a rehearsal's
    # plan names them as apply will. None: the run directory, where the fake writes them.
    export_location: str | None = None
    # The databases (normalized DNs) this server holds a passive copy of (a 2010+ DAG): not
    # its stores, and not read here (Get-MailboxStatistics -Server without -IncludePassive
    # returns "statistics from active database copies only"), until a switchover activates it.
    passive: set[str] = field(default_factory=set)

    def copy(self) -> FakeServer:
        stores = {key: FakeStore(s.info, dict(s.mailboxes)) for key, s in self.stores.items()}
        return replace(
            self,
            services=dict(self.services),
            stores=stores,
            queue=list(self.queue),
            passive=set(self.passive),
        )

    def running(self, name: str) -> bool:
        """Whether the service runs (one this server lacks is taken as running: world files
        written before servers had roles list only some services)."""
        return self.services.get(name, ServiceState.RUNNING) is ServiceState.RUNNING

    @property
    def transport_running(self) -> bool:
        """Whether this server accepts mail handed to it: Exchange 2000/2003 while its MTA
        Stacks and SMTP run; later versions while its Microsoft Exchange Transport runs, where
        its roles give it one."""
        if self.info.version.legacy:
            return self.running("MSExchangeMTA") and self.running("SMTPSVC")
        own = "MSExchangeTransport" in self.info.transport_services
        return not own or self.running("MSExchangeTransport")


class FakeExchange:
    """The ``Exchange`` port over fake servers, plus seeding, delivery and the scheduled agent."""

    OPERATIONS: ClassVar[tuple[str, ...]] = (
        "servers",
        "stores",
        "mailboxes",
        "service_states",
        "running_dependents",
        "set_services",
        "run_cleanup_agent",
        "purge_mailboxes",
        "disable_mailboxes",
        "reconnect_mailboxes",
        "reconnect_problems",
        "update_recipients",
        "mail_export_refusal",
        "export_location",
        "exports",
        "export_mail",
        "import_mail",
    )

    def __init__(
        self,
        directory: FakeDirectory,
        *,
        timeline: Timeline,
        faults: Faults,
        organisation: str,
        sink: MailSink | None = None,
    ) -> None:
        self.organisation = organisation
        self.sink: MailSink = sink if sink is not None else MemorySink()
        self._directory = directory
        self._timeline = timeline
        self._op = Gate("exchange", faults, timeline.catch_up)
        self._servers: dict[str, FakeServer] = {}
        self._mailbox_homes: dict[UUID, tuple[str, str]] = {}  # mailbox -> (server, store key)
        self._store_homes: dict[str, str] = {}  # normalized store DN -> server
        self._cleanup_done = timeline.now()  # scheduled passes up to here have run
        # The archive each disabled user had (GUID, name): Disable-Mailbox disconnects it with
        # the primary mailbox, and Connect-Mailbox -Archive connects it again.
        self._disabled_archives: dict[UUID, tuple[str, str | None]] = {}
        timeline.add_source(self)

    def clone(
        self, directory: FakeDirectory, *, timeline: Timeline, faults: Faults
    ) -> FakeExchange:
        """An independent copy sharing nothing mutable; exports are copied into memory."""
        twin = FakeExchange(
            directory,
            timeline=timeline,
            faults=faults,
            organisation=self.organisation,
            sink=self.sink.to_memory(),
        )
        twin._servers = {name: server.copy() for name, server in self._servers.items()}
        twin._mailbox_homes = dict(self._mailbox_homes)
        twin._store_homes = dict(self._store_homes)
        twin._cleanup_done = self._cleanup_done
        twin._disabled_archives = dict(self._disabled_archives)
        return twin

    # The Exchange port.

    def servers(self) -> list[ExchangeServer]:
        return self._op(
            "servers", self.organisation, None, (), lambda: [s.info for s in self._servers.values()]
        )

    def stores(self, server: str) -> list[Store]:
        return self._op(
            "stores",
            server,
            None,
            (server,),
            lambda: [s.info for s in self._server(server, "exchange.stores").stores.values()],
        )

    def mailboxes(self, server: str, guids: Collection[UUID] | None = None) -> list[MailboxInfo]:
        wanted = None if guids is None else list(guids)

        def action() -> list[MailboxInfo]:
            host = self._server(server, "exchange.mailboxes")
            if wanted is None:
                found = [(s, m) for s in host.stores.values() for m in s.mailboxes.values()]
            else:
                found = [pair for guid in wanted for pair in self._copies(host, guid)]
            view = self._reader(host)
            return [_info(host, store, mailbox, view) for store, mailbox in found]

        return self._op("mailboxes", server, None, (server, wanted), action)

    def service_states(self, server: str, names: Collection[str]) -> dict[str, ServiceState]:
        wanted = list(names)

        def action() -> dict[str, ServiceState]:
            host = self._server(server, "exchange.service_states")
            self._check_services(host, wanted, "exchange.service_states")
            return {name: host.services[name] for name in wanted}

        return self._op("service_states", server, None, (server, wanted), action)

    def running_dependents(self, server: str, names: Collection[str]) -> dict[str, list[str]]:
        wanted = list(names)

        def action() -> dict[str, list[str]]:
            host = self._server(server, "exchange.running_dependents")
            self._check_services(host, wanted, "exchange.running_dependents")
            return {
                name: [d for d in host.dependents.get(name, ()) if host.running(d)]
                for name in wanted
            }

        return self._op("running_dependents", server, None, (server, wanted), action)

    def set_services(self, server: str, names: Sequence[str], state: ServiceState) -> None:
        def action() -> None:
            host = self._server(server, "exchange.set_services")
            self._check_services(host, names, "exchange.set_services")
            for name in names:
                host.services[name] = ServiceState(state)
                if state is ServiceState.STOPPED:  # Stop-Service -Force stops its dependents
                    for dependent in host.dependents.get(name, ()):
                        if dependent in host.services:
                            host.services[dependent] = ServiceState.STOPPED
            self._release_held_mail()

        self._op("set_services", server, None, (server, list(names), str(state)), action)

    def run_cleanup_agent(self, server: str, store_dns: Collection[str]) -> None:
        wanted = list(store_dns)

        def action() -> None:
            host = self._server(server, "exchange.run_cleanup_agent")
            stores = [self._store(host, dn, "exchange.run_cleanup_agent") for dn in wanted]
            if host.info.version.cleanup_agent_is_manual:
                raise ManualActionRequired(
                    _esm_instructions(host, stores),
                    rehearse=lambda: self._cleanup(host, stores, self._timeline.now()),
                )
            self._cleanup(host, stores, self._timeline.now())

        self._op("run_cleanup_agent", server, None, (server, wanted), action)

    def purge_mailboxes(
        self, server: str, guids: Collection[UUID], stores: Mapping[UUID, str] | None = None
    ) -> None:
        wanted = list(guids)
        where = dict(stores or {})

        def action() -> None:
            host = self._server(server, "exchange.purge_mailboxes")
            doomed = [
                self._disconnected(host, guid, "exchange.purge_mailboxes", where.get(guid))
                for guid in wanted
            ]
            for store, mailbox in doomed:
                store.mailboxes.pop(mailbox.guid, None)
                self._mailbox_homes.pop(mailbox.guid, None)

        self._op("purge_mailboxes", server, None, (server, wanted), action)

    def disable_mailboxes(self, server: str, users: Collection[UUID]) -> None:
        wanted = list(users)
        operation = "exchange.disable_mailboxes"

        def action() -> None:
            host = self._server(server, operation)
            entries = [self._user(host, user, operation) for user in wanted]
            cleared = dict.fromkeys(DISABLE_MAILBOX_ATTRIBUTES)
            for entry in entries:
                archive = entry.get("msExchArchiveGUID")
                if archive:
                    self._disabled_archives[entry.guid] = (archive, entry.get("msExchArchiveName"))
                self._directory.write(host.info.dc, entry.guid, cleared, operation=operation)

        self._op("disable_mailboxes", server, None, (server, wanted), action)

    def reconnect_problems(
        self, server: str, mailboxes: Collection[UUID], stores: Mapping[UUID, str] | None = None
    ) -> dict[UUID, str]:
        """Connect-Mailbox -ValidateOnly as far as the fake knows it: a mailbox that is not on
        the server (in the store given), or that a user (as the server's DC sees it) is
        connected to, cannot be connected. What else a real server checks is unknown here."""
        wanted = list(mailboxes)
        where = dict(stores or {})

        def action() -> dict[UUID, str]:
            host = self._server(server, "exchange.reconnect_problems")
            if host.info.version.legacy:
                return {}
            view = self._reader(host)
            problems: dict[UUID, str] = {}
            for guid in wanted:
                found = self._find(host, guid)
                if found is None:
                    problems[guid] = f"no mailbox {guid} on {server}"
                elif guid in where and _normal(where[guid]) != _normal(found[0].info.dn):
                    problems[guid] = f"mailbox {guid} is not in the store {where[guid]}"
                elif (owner := view.mailbox_owner(guid)) is not None:
                    problems[guid] = f"mailbox {guid} is connected to the user {owner}"
            return problems

        return self._op("reconnect_problems", server, None, (server, wanted), action)

    def disabled_archives(self) -> dict[UUID, tuple[str, str | None]]:
        """The archive (GUID, name) each disabled user had: part of the organisation's state a
        saved world keeps, so a resumed run can still connect it with -Archive."""
        return dict(self._disabled_archives)

    def remember_disabled_archive(self, user: UUID, archive: str, name: str | None) -> None:
        self._disabled_archives[user] = (archive, name)

    def reconnect_mailboxes(
        self,
        server: str,
        pairs: Sequence[tuple[UUID, UUID]],
        connect_as: Mapping[UUID, ConnectAs] | None = None,
        stores: Mapping[UUID, str] | None = None,
    ) -> None:
        wanted = list(pairs)
        how = dict(connect_as or {})
        where = dict(stores or {})
        operation = "exchange.reconnect_mailboxes"

        def action() -> None:
            host = self._server(server, operation)
            if host.info.version is ExchangeVersion.E2000:
                raise PermanentError(
                    "Exchange 2000 has no Exchange_Mailbox.Reconnect",
                    endpoint=server,
                    operation=operation,
                    hint="re-home the user through LDAP (msExchMailboxGuid, "
                    "homeMDB, msExchHomeServerName, legacyExchangeDN)",
                )
            _refuse_repeats(wanted, server, operation)
            checked = [
                self._reconnectable(host, mailbox, user, where.get(mailbox))
                for mailbox, user in wanted
            ]
            for store, mailbox, user in checked:
                link: dict[str, str | list[str] | None] = {
                    "msExchMailboxGuid": str(mailbox.guid),
                    "homeMDB": store.info.dn,
                    "msExchHomeServerName": host.legacy_dn,
                    "legacyExchangeDN": mailbox.legacy_dn,
                    # The alias of a stripped user is gone: Connect-Mailbox and Reconnect()
                    # make one from the account (Connect-Mailbox.md, -Alias).
                    "mailNickname": user.get("mailNickname") or user.sam_account_name,
                }
                link |= self._connected_as(host, user, how.get(user.guid, ConnectAs()))
                self._directory.write(host.info.dc, user.guid, link, operation=operation)
                store.mailboxes[mailbox.guid] = replace(mailbox, disconnected_at=None)
                self._stamp(host, user.guid, operation)

        self._op("reconnect_mailboxes", server, None, (server, wanted), action)

    def update_recipients(self, server: str, users: Collection[UUID]) -> None:
        wanted = list(users)
        operation = "exchange.update_recipients"

        def action() -> None:
            host = self._server(server, operation)
            for user in wanted:
                self._user(host, user, operation)

            if host.info.version.legacy:
                # The run announces the operator's Update Now and goes on (it does not wait for
                # it), so neither a rehearsal nor the fake plays it: both end as the run does.
                raise ManualActionRequired(
                    recipient_update_instructions(host.info.name, self._directory.domain)
                )
            for user in wanted:
                self._stamp(host, user, operation)

        self._op("update_recipients", server, None, (server, wanted), action)

    def mail_export_refusal(
        self, server: str, mailboxes: Collection[MailboxInfo] = ()
    ) -> str | None:
        boxes = list(mailboxes)

        def action() -> str | None:
            host = self._server(server, "exchange.mail_export_refusal")
            return host.mail_export_refusal or mailbox_list_refusal(
                server, host.info.version, boxes
            )

        return self._op("mail_export_refusal", server, None, (server,), action)

    def export_location(self, server: str) -> str:
        def action() -> str:
            host = self._server(server, "exchange.export_location")
            return host.export_location or FAKE_EXPORT_LOCATION.format(server=server)

        return self._op("export_location", server, None, (server,), action)

    def exports(self, server: str, guids: Collection[UUID]) -> dict[UUID, ExportRef]:
        wanted = list(guids)

        def action() -> dict[UUID, ExportRef]:
            self._server(server, "exchange.exports")
            found = {guid: self._read_export(server, guid, "exchange.exports") for guid in wanted}
            return {guid: ref for guid, ref in found.items() if ref is not None}

        return self._op("exports", server, None, (server, wanted), action)

    def export_mail(
        self, server: str, guids: Collection[UUID], stores: Mapping[UUID, str] | None = None
    ) -> dict[UUID, ExportRef]:
        wanted = list(guids)
        where = dict(stores or {})

        def action() -> dict[UUID, ExportRef]:
            host = self._transferring(server, "exchange.export_mail")
            mailboxes = [
                self._in_store(host, guid, where.get(guid), "exchange.export_mail")[1]
                for guid in wanted
            ]
            locations = self.sink.write(server, [(box.guid, box.items) for box in mailboxes])
            return {
                mailbox.guid: ExportRef(server, mailbox.guid, location, mailbox.item_ids)
                for mailbox, location in zip(mailboxes, locations, strict=True)
            }

        return self._op("export_mail", server, None, (server, wanted), action)

    def import_mail(
        self,
        server: str,
        pairs: Sequence[tuple[UUID, ExportRef]],
        stores: Mapping[UUID, str] | None = None,
    ) -> None:
        wanted = list(pairs)
        where = dict(stores or {})
        operation = "exchange.import_mail"

        def action() -> None:
            host = self._transferring(server, operation)
            loads = [self._importable(host, guid, ref, where.get(guid)) for guid, ref in wanted]
            for guid, items in loads:
                store, mailbox = self._mailbox(host, guid, operation)
                store.mailboxes[guid] = _with_items(mailbox, items)

        self._op("import_mail", server, None, (server, wanted), action)

    # Mail delivery (a scenario and test helper, not a port call).

    def deliver(self, server: str, recipient_legacy_dn: str, item: MailItem) -> Delivery:
        """Hand ``item`` to ``server`` for the user with this legacyExchangeDN."""
        host = self._server(server, "exchange.deliver")
        if not host.transport_running:
            host.queue.append(HeldMail(recipient_legacy_dn, item))
            return "queued"
        return self._route(host, recipient_legacy_dn, item)

    def _release_held_mail(self) -> None:
        """Hand on the mail held anywhere that can now go on."""
        for host in self._servers.values():
            if host.queue and host.transport_running:
                held, host.queue = host.queue, []
                for mail in held:
                    self._route(host, mail.recipient, mail.item)

    def _delivery_runs(self, home: FakeServer) -> bool:
        """Whether something that delivers into ``home``'s databases runs (module docstring)."""
        version = home.info.version
        if version.legacy:
            return home.transport_running
        if version in (ExchangeVersion.E2007, ExchangeVersion.E2010):
            return any(
                HUB_TRANSPORT in server.info.roles
                and server.info.site == home.info.site
                and server.info.version is version
                and server.running("MSExchangeTransport")
                for server in self._servers.values()
            )
        return home.running("MSExchangeDelivery")

    def _route(self, host: FakeServer, recipient: str, item: MailItem) -> Delivery:
        """Resolve the recipient through the server's DC to its mailbox, anywhere in the
        organisation; a mail-enabled user without a mailbox yet gets one in its homeMDB store
        (as the store creates mailboxes on first delivery). Held on ``host`` while nothing
        delivers into the mailbox's database."""
        view = self._reader(host)
        user = view.by_legacy_dn(recipient) or _by_x500(view, recipient)
        if user is None or user.mailbox_guid is None:
            return "undeliverable"
        home = self._mailbox_homes.get(user.mailbox_guid)
        store_dn = user.get("homeMDB")
        if home is None and (store_dn is None or _normal(store_dn) not in self._store_homes):
            return "undeliverable"
        holder = self._servers[home[0] if home else self._store_homes[_normal(store_dn or "")]]
        if not self._delivery_runs(holder):
            host.queue.append(HeldMail(recipient, item))
            return "queued"
        if home is None:
            name = user.get("displayName") or user.sam_account_name
            self.add_mailbox(
                store_dn or "",
                user.mailbox_guid,
                user.get("legacyExchangeDN") or recipient,
                name,
                created_at=self._timeline.now(),
            )
            home = self._mailbox_homes[user.mailbox_guid]
        store = self._servers[home[0]].stores[home[1]]
        store.mailboxes[user.mailbox_guid] = _with_items(store.mailboxes[user.mailbox_guid], [item])
        return "delivered"

    # The scheduled cleanup agent of Exchange 2000/2003, as a timeline source.

    def next_due(self) -> datetime | None:
        due = [
            self._next_pass(server)
            for server in self._servers.values()
            if server.info.version.legacy
        ]
        return min(due) if due else None

    def process_next(self) -> None:
        moment = self.next_due()
        if moment is None:
            return
        for server in self._servers.values():
            if server.info.version.legacy and self._next_pass(server) == moment:
                self._cleanup(server, server.stores.values(), moment)
        self._cleanup_done = moment

    def _next_pass(self, server: FakeServer) -> datetime:
        interval = server.cleanup_interval_s
        ticks = math.floor(self._cleanup_done.timestamp() / interval) + 1
        return datetime.fromtimestamp(ticks * interval, UTC)

    def _cleanup(self, host: FakeServer, stores: Iterable[FakeStore], moment: datetime) -> None:
        """One cleanup-agent pass: mark what no user (as the server's DC sees it) points at as
        disconnected, and clear the mark where a user points at it again."""
        view = self._reader(host)
        for store in stores:
            if store.info.recovery:  # no user is ever connected to a recovery store
                continue
            for mailbox in list(store.mailboxes.values()):
                if mailbox.soft_deleted:  # a move's leftover stays soft-deleted
                    continue
                owned = view.mailbox_owner(mailbox.guid) is not None
                if owned == (mailbox.disconnected_at is not None):
                    mark = None if owned else moment
                    store.mailboxes[mailbox.guid] = replace(mailbox, disconnected_at=mark)

    # Seeding (the world file, scenario builders). Raise ValueError on inconsistent input.

    def default_legacy_dn(self, server: str) -> str:
        return (
            f"/o={self.organisation}/ou=First Administrative Group/cn=Configuration/cn=Servers"
            f"/cn={server}"
        )

    def add_server(
        self,
        name: str,
        version: ExchangeVersion,
        dc: str,
        *,
        services: Mapping[str, ServiceState] | None = None,
        legacy_dn: str | None = None,
        cleanup_interval_s: float = DEFAULT_CLEANUP_INTERVAL_S,
        mail_export_refusal: str | None = None,
        roles: Collection[str] = (),
        site: str = "",
        dependents: Mapping[str, Sequence[str]] | None = None,
        export_location: str | None = None,
        global_catalog: str | None = None,
    ) -> ExchangeServer:
        """A server reading AD through ``dc``, with these ``roles`` (default: the version's,
        ``default_roles``) in AD ``site``; by default its store and the transport services of
        its roles run, and it can export and import mail (``mail_export_refusal``: why it
        cannot)."""
        if not name or name in self._servers:
            raise ValueError(f"server name {name!r} is empty or already used")
        if dc not in {view.name for view in self._directory.views()}:
            raise ValueError(f"server {name}: DC {dc!r} is not a DC of the domain")
        if dc in self._directory.partial_replicas:
            raise ValueError(
                f"server {name}: {dc!r} holds a read-only partial replica; name "
                "it as the server's global_catalog and give a DC of the domain"
            )
        if global_catalog is not None and global_catalog not in {
            view.name for view in self._directory.views()
        }:
            raise ValueError(f"server {name}: global catalog {global_catalog!r} is not a DC")
        if not cleanup_interval_s > 0:
            raise ValueError(f"server {name}: cleanup_interval_s must be > 0")
        info = ExchangeServer(
            name,
            ExchangeVersion(version),
            dc,
            frozenset(roles),
            site,
            domain_controllers=(dc,),
            global_catalogs=() if global_catalog is None else (global_catalog,),
        )
        if services is None:
            services = dict.fromkeys(
                ("MSExchangeIS", *info.transport_services), ServiceState.RUNNING
            )
        self._servers[name] = FakeServer(
            info,
            legacy_dn or self.default_legacy_dn(name),
            float(cleanup_interval_s),
            dict(services),
            mail_export_refusal=mail_export_refusal,
            dependents={name: tuple(names) for name, names in (dependents or {}).items()},
            export_location=export_location,
        )
        return info

    def add_store(
        self, server: str, name: str, storage_group: str, dn: str, *, recovery: bool = False
    ) -> Store:
        """A store (2000/2003) or database (2007+); ``recovery``: a recovery storage group's
        store or a recovery database, holding restored copies of other stores' mailboxes."""
        host = self._servers.get(server)
        if host is None:
            raise ValueError(f"no server {server!r}")
        key = normalize(dn)
        if key in self._store_homes:
            raise ValueError(f"store DN {dn!r} is already used")
        info = Store(server, name, storage_group, dn, recovery)
        host.stores[key] = FakeStore(info)
        self._store_homes[key] = server
        return info

    def add_mailbox(
        self,
        store_dn: str,
        guid: UUID,
        legacy_dn: str,
        display_name: str,
        *,
        items: Iterable[MailItem] = (),
        disconnected_at: datetime | None = None,
        created_at: datetime | None = None,
        last_logon_at: datetime | None = None,
    ) -> None:
        mailbox = _with_items(
            FakeMailbox(
                guid,
                legacy_dn,
                display_name,
                disconnected_at,
                created_at=created_at,
                last_logon_at=last_logon_at,
            ),
            items,
        )
        self.add_mailboxes(store_dn, [mailbox])

    def add_mailboxes(self, store_dn: str, mailboxes: Iterable[FakeMailbox]) -> None:
        """Put these mailboxes in the store (their item ids must be unique per mailbox)."""
        key = _normal(store_dn)
        server = self._store_homes.get(key)
        if server is None:
            raise ValueError(f"no store with DN {store_dn!r}")
        store = self._servers[server].stores[key]
        home = (server, key)  # one tuple shared by the store's mailboxes
        for mailbox in mailboxes:
            live = store.copy_kind(mailbox) is MailboxCopy.LIVE
            if mailbox.guid in store.mailboxes or (live and mailbox.guid in self._mailbox_homes):
                raise ValueError(f"mailbox GUID {mailbox.guid} is already used")
            ids = mailbox.item_ids
            if len(set(ids)) != len(ids):
                raise ValueError(f"mailbox {mailbox.guid} holds two items with one id")
            store.mailboxes[mailbox.guid] = mailbox
            if live:  # a recovery or soft-deleted copy shares the GUID of the live mailbox
                self._mailbox_homes[mailbox.guid] = home

    def add_database_copy(self, store_dn: str, server: str) -> None:
        """A passive copy of the database ``store_dn`` on ``server`` (Add-MailboxDatabaseCopy,
        Exchange 2010 and later: a DAG's members run one version)."""
        key = _normal(store_dn)
        active = self._store_homes.get(key)
        host = self._servers.get(server)
        if active is None or host is None:
            raise ValueError(f"no store {store_dn!r} or no server {server!r}")
        version = self._servers[active].info.version
        if version.legacy or version is ExchangeVersion.E2007 or active == server:
            raise ValueError(
                f"{server} cannot hold a database copy of {store_dn!r} (a DAG is "
                "Exchange 2010 or later, and the copy is on another server)"
            )
        if host.info.version is not version:
            raise ValueError(f"{server} runs Exchange {host.info.version}, {active} {version}")
        host.passive.add(key)

    def activate_copy(self, store_dn: str, server: str) -> None:
        """A switchover (Move-ActiveMailboxDatabase): ``server``'s passive copy becomes the
        active one, and the server that held it keeps a passive copy."""
        key = _normal(store_dn)
        host = self._servers[server]
        if key not in host.passive:
            raise ValueError(f"{server} holds no copy of {store_dn!r}")
        old = self._servers[self._store_homes[key]]
        store = old.stores.pop(key)
        store.info = replace(store.info, server=server)
        host.stores[key] = store
        host.passive.discard(key)
        old.passive.add(key)
        self._store_homes[key] = server
        for guid in store.mailboxes:
            if self._mailbox_homes.get(guid) == (old.info.name, key):
                self._mailbox_homes[guid] = (server, key)

    def database_copies(self, store_dn: str) -> list[str]:
        """The servers holding a passive copy of this database."""
        key = _normal(store_dn)
        return [name for name, server in self._servers.items() if key in server.passive]

    def locate_exports(self, server: str, location: str) -> None:
        """Say where ``server``'s exports are (``export_location``): a rehearsal of a real
        server names them as the real server's export tool writes them."""
        self._servers[server].export_location = location

    def hold(self, server: str, recipient_legacy_dn: str, item: MailItem) -> None:
        """Put mail in ``server``'s queue as if its transport had been stopped."""
        self._servers[server].queue.append(HeldMail(recipient_legacy_dn, item))

    def records(self) -> list[FakeServer]:
        """The servers' state, for saving (read-only by convention)."""
        return list(self._servers.values())

    # The recipient policy.

    def _stamp(self, host: FakeServer, user: UUID, operation: str) -> None:
        """Apply the recipient policy to ``user`` as ``host``'s DC sees it, written there."""
        entry = self._user(host, user, operation)
        changes = policy_stamp(
            entry, host.info.version, _organisation_of(host.legacy_dn), self._directory.domain
        )
        if changes:
            self._directory.write(host.info.dc, user, changes, operation=operation)

    def _connected_as(
        self, host: FakeServer, user: DirectoryEntry, how: ConnectAs
    ) -> dict[str, str | list[str] | None]:
        """What Connect-Mailbox's parameter set writes besides the link (2007+): the type, and
        with -Archive the archive the user had when it was disabled."""
        if host.info.version.legacy:
            return {}
        if how.archive and how.kind is not MailboxKind.USER:
            raise PermanentError(
                f"-Archive is a parameter of Connect-Mailbox's User set only, not {how.kind}",
                endpoint=host.info.name,
                operation="exchange.reconnect_mailboxes",
                target=str(user.guid),
            )
        written: dict[str, str | list[str] | None] = {
            "msExchRecipientTypeDetails": str(how.kind.type_details)
        }
        archive = self._disabled_archives.get(user.guid) if how.archive else None
        if how.archive and archive is None:
            raise PermanentError(
                f"user {user.dn} has no disconnected archive to connect",
                endpoint=host.info.name,
                operation="exchange.reconnect_mailboxes",
                target=str(user.guid),
            )
        if archive is not None:
            written |= {"msExchArchiveGUID": archive[0], "msExchArchiveName": archive[1]}
        return written

    # Lookups and checks shared by the port calls.

    def _server(self, name: str, operation: str) -> FakeServer:
        host = self._servers.get(name)
        if host is None:
            known = ", ".join(self._servers) or "none"
            raise PermanentError(
                f"unknown Exchange server; known: {known}", endpoint=name, operation=operation
            )
        return host

    def _transferring(self, name: str, operation: str) -> FakeServer:
        """The server, where it can export and import mail; refused as the real one would."""
        host = self._server(name, operation)
        if host.mail_export_refusal is not None:
            raise PermanentError(host.mail_export_refusal, endpoint=name, operation=operation)
        return host

    def _store(self, host: FakeServer, dn: str, operation: str) -> FakeStore:
        store = host.stores.get(_normal(dn))
        if store is None:
            known = "; ".join(s.info.dn for s in host.stores.values()) or "none"
            raise PermanentError(
                f"no store with this DN on {host.info.name}; its stores: {known}",
                endpoint=host.info.name,
                operation=operation,
                target=dn,
            )
        return store

    def _find(self, host: FakeServer, guid: UUID) -> tuple[FakeStore, FakeMailbox] | None:
        """The live mailbox ``guid`` on ``host``: what an action on it acts on."""
        home = self._mailbox_homes.get(guid)
        if home is None or home[0] != host.info.name:
            return None
        store = host.stores[home[1]]
        return store, store.mailboxes[guid]

    @staticmethod
    def _copies(host: FakeServer, guid: UUID) -> list[tuple[FakeStore, FakeMailbox]]:
        """Every mailbox with this GUID on ``host``: the live one and its copies."""
        return [
            (store, store.mailboxes[guid])
            for store in host.stores.values()
            if guid in store.mailboxes
        ]

    def _in_store(
        self, host: FakeServer, guid: UUID, store_dn: str | None, operation: str
    ) -> tuple[FakeStore, FakeMailbox]:
        """The live mailbox ``guid`` where the caller saw it (``store_dn``; None: wherever it
        is). A recovery or soft-deleted copy is never acted on: Reconnect() and Connect-Mailbox
        do not apply to it, and a purge or export of it would not be of the user's mailbox."""
        store, mailbox = self._mailbox(host, guid, operation)
        if store_dn is not None and _normal(store_dn) != _normal(store.info.dn):
            kinds = {_normal(s.info.dn): s.copy_kind(m).value for s, m in self._copies(host, guid)}
            seen = kinds.get(_normal(store_dn))
            what = f"only a {seen} copy of it is" if seen else "it is not"
            raise PermanentError(
                f"mailbox {guid} on {host.info.name}: {what} in the store {store_dn}; the "
                f"mailbox itself is in {store.info.dn}",
                endpoint=host.info.name,
                operation=operation,
                target=str(guid),
                hint="plan again: the mailbox moved since the plan was made",
            )
        return store, mailbox

    def _mailbox(
        self, host: FakeServer, guid: UUID, operation: str
    ) -> tuple[FakeStore, FakeMailbox]:
        found = self._find(host, guid)
        if found is None:
            elsewhere = self._mailbox_homes.get(guid)
            where = f" (it is on {elsewhere[0]})" if elsewhere else ""
            raise PermanentError(
                f"no mailbox {guid} on {host.info.name}{where}",
                endpoint=host.info.name,
                operation=operation,
                target=str(guid),
            )
        return found

    def _disconnected(
        self, host: FakeServer, guid: UUID, operation: str, store_dn: str | None = None
    ) -> tuple[FakeStore, FakeMailbox]:
        store, mailbox = self._in_store(host, guid, store_dn, operation)
        if mailbox.disconnected_at is None:
            raise PermanentError(
                f"mailbox {guid} ({mailbox.display_name}) on {host.info.name} is not disconnected",
                endpoint=host.info.name,
                operation=operation,
                target=str(guid),
                hint="run the cleanup agent first, once no user points at the mailbox",
            )
        return store, mailbox

    def _reader(self, host: FakeServer) -> DcView:
        """What the server's store looks users up in: its global catalog, else its DC."""
        return self._directory.view((host.info.global_catalogs or (host.info.dc,))[0])

    def _owner(self, host: FakeServer, mailbox: UUID) -> UUID | None:
        return self._reader(host).mailbox_owner(mailbox)

    def _user(self, host: FakeServer, guid: UUID, operation: str) -> DirectoryEntry:
        entry = self._directory.view(host.info.dc).live(guid)
        if entry is None:
            raise PermanentError(
                f"no live user with objectGUID {guid} as {host.info.dc} sees it",
                endpoint=host.info.name,
                operation=operation,
                target=str(guid),
                hint=f"wait for replication to {host.info.dc} if the user is new",
            )
        return entry

    def _reconnectable(
        self, host: FakeServer, guid: UUID, user: UUID, store_dn: str | None = None
    ) -> tuple[FakeStore, FakeMailbox, DirectoryEntry]:
        operation = "exchange.reconnect_mailboxes"
        store, mailbox = self._disconnected(host, guid, operation, store_dn)
        entry = self._user(host, user, operation)
        if entry.mail_enabled:
            raise PermanentError(
                f"user {entry.dn} is still mail-enabled as {host.info.dc} sees it",
                endpoint=host.info.name,
                operation=operation,
                target=str(user),
                hint="remove its Exchange attributes first and wait for replication to "
                f"{host.info.dc}",
            )
        return store, mailbox, entry

    def _check_services(self, host: FakeServer, names: Iterable[str], operation: str) -> None:
        unknown = [name for name in names if name not in host.services]
        if unknown:
            raise PermanentError(
                f"no service {', '.join(unknown)} on {host.info.name}; "
                f"its services: {', '.join(host.services)}",
                endpoint=host.info.name,
                operation=operation,
                target=unknown[0],
            )

    def _read_export(self, server: str, guid: UUID, operation: str) -> ExportRef | None:
        try:
            found = self.sink.read(server, guid)
        except InputError as error:
            raise PermanentError(
                f"the export of mailbox {guid} is unreadable: {error}",
                endpoint=server,
                operation=operation,
                target=str(guid),
            ) from None
        if found is None:
            return None
        location, items = found
        return ExportRef(server, guid, location, tuple(item.id for item in items))

    def _importable(
        self, host: FakeServer, guid: UUID, ref: ExportRef, store_dn: str | None = None
    ) -> tuple[UUID, tuple[MailItem, ...]]:
        operation = "exchange.import_mail"
        self._in_store(host, guid, store_dn, operation)
        if self._owner(host, guid) is None:
            raise PermanentError(
                f"mailbox {guid} on {host.info.name} is not connected to any user",
                endpoint=host.info.name,
                operation=operation,
                target=str(guid),
                hint="reconnect it to its user first",
            )
        try:
            found = self.sink.read(ref.server, ref.mailbox)
        except InputError as error:
            found = None
            problem = f"is unreadable: {error}"
        else:
            problem = "was not found"
        if found is None:
            raise PermanentError(
                f"the export {ref.location} {problem}",
                endpoint=host.info.name,
                operation=operation,
                target=str(guid),
            )
        return guid, found[1]


def _info(host: FakeServer, store: FakeStore, mailbox: FakeMailbox, view: DcView) -> MailboxInfo:
    return MailboxInfo(
        guid=mailbox.guid,
        server=host.info.name,
        store_dn=store.info.dn,
        legacy_dn=mailbox.legacy_dn,
        display_name=mailbox.display_name,
        disconnected_at=mailbox.disconnected_at,
        item_ids=mailbox.item_ids,
        owner=view.mailbox_owner(mailbox.guid),
        last_logon_at=mailbox.last_logon_at,
        created_at=mailbox.created_at,
        copy=store.copy_kind(mailbox),
    )


def _by_x500(view: DcView, legacy_dn: str) -> DirectoryEntry | None:
    """The user holding ``X500:<legacy_dn>``: how Exchange resolves a reply to mail sent while
    the user had that legacyExchangeDN (a scan: only mail to a changed DN takes it)."""
    wanted = f"x500:{legacy_dn}".lower()
    for entry in view.entries():
        raw = entry.attributes.get("proxyAddresses") or []
        if not entry.deleted and any(
            a.lower() == wanted for a in ([raw] if isinstance(raw, str) else raw)
        ):
            return entry
    return None


def _normal(dn: str) -> str:
    try:
        return normalize(dn)
    except ValueError:
        return dn.lower()


def _with_items(mailbox: FakeMailbox, items: Iterable[MailItem]) -> FakeMailbox:
    """``mailbox`` plus the items whose ids it does not hold yet (an item keeps its id)."""
    present = set(mailbox.item_ids)
    added = []
    for item in items:
        if item.id not in present:
            present.add(item.id)
            added.append(item)
    return replace(mailbox, items=mailbox.items + added) if added else mailbox


def _refuse_repeats(pairs: Sequence[tuple[UUID, UUID]], server: str, operation: str) -> None:
    for position, name in ((0, "mailbox"), (1, "user")):
        seen: set[UUID] = set()
        for pair in pairs:
            if pair[position] in seen:
                raise PermanentError(
                    f"{name} {pair[position]} appears in more than one pair",
                    endpoint=server,
                    operation=operation,
                    target=str(pair[position]),
                )
            seen.add(pair[position])


def _organisation_of(legacy_dn: str) -> str:
    """The organisation's name in a server's legacyExchangeDN (``/o=Corp/...``): what the
    default policy's X.400 address names (``p=``)."""
    for part in legacy_dn.split("/"):
        if part.lower().startswith("o="):
            return part[2:]
    return "Exchange"


def _administrative_group(legacy_dn: str) -> str:
    for part in legacy_dn.split("/"):
        if part.lower().startswith("ou="):
            return part[3:]
    return "First Administrative Group"


def _esm_instructions(host: FakeServer, stores: Iterable[FakeStore]) -> str:
    name = host.info.name
    group = _administrative_group(host.legacy_dn)
    return "\n".join(
        f"On {name} open Exchange System Manager > Administrative Groups > {group} > Servers > "
        f"{name} > {store.info.storage_group} > {store.info.name} > right-click Mailboxes > "
        "Run Cleanup Agent"
        for store in stores
    )
