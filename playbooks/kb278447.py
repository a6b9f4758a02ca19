"""KB278447: users connected to empty mailboxes after a failed Exchange 5.5 -> 2000 upgrade.

The store could not read AD and stamped each user with a random msExchMailboxGUID: each user got
a new blank mailbox and the original, with the data, is disconnected. Per affected user: stop
transport, export what reached the blank mailbox, strip the user's Exchange attributes, let AD
converge and the cleanup agent disconnect the blank mailbox, reconnect the original, import the
new items into it, give the user back the addresses and settings the strip removed, start
transport again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from remediate.dn import normalize, rdn_value
from remediate.engine.changes import (
    LEFT_OUT,
    Change,
    Finding,
    Impact,
    JsonValue,
    NoOp,
    WouldFail,
)
from remediate.engine.concurrent_reads import read_each
from remediate.engine.fingerprint import Scope, mailbox_key, object_key, service_key
from remediate.engine.history import NoHistory, RunHistory
from remediate.engine.playbook import (
    Discovery,
    Disruption,
    OutlineStep,
    Parameter,
    Playbook,
    parse_bool,
    parse_datetime,
    parse_names,
    parse_parameters,
)
from remediate.engine.step import Step, StepContext
from remediate.engine.wording import Wording
from remediate.errors import InputError
from remediate.model import (
    DirectoryEntry,
    ExchangeServer,
    ExchangeVersion,
    MailboxInfo,
    ServiceState,
    UserQuery,
    iso,
    mailbox_list_refusal,
    utc,
)
from remediate.ports import World
from remediate.steps.ad import RemoveExchangeAttributes, StripTarget
from remediate.steps.exchange import PurgeMailbox, ReconnectMailbox, RunCleanupAgent
from remediate.steps.mail import ExportMail, ImportMail
from remediate.steps.recipient import (
    PolicyTarget,
    RecipientTarget,
    RestoreRecipient,
    UpdateRecipient,
    VerifyRecipient,
    WaitForRestore,
)
from remediate.steps.replication import (
    DirectoryUse,
    Expectation,
    ReplicationTarget,
    WaitForReplication,
    reachable,
    replication_targets,
)
from remediate.steps.services import StartService, StopService, delivering_services
from remediate.steps.targets import (
    ImportTarget,
    MailboxTarget,
    ReconnectTarget,
    ServiceTarget,
    StoreTarget,
    UserOnServer,
    UserTarget,
)

from .common import ServerInfo, as_dict, as_list, copies_left_alone
from .kb278447_evidence import (
    NOT_PURGED,
    NOT_RESTORED,
    Decision,
    History,
    Judge,
    Pairing,
    Rules,
    Window,
    alias_of,
    describe,
    describe_mailbox,
    legacy_dn_index,
    stripped_owners,
)

FREE_BUSY_MARKER = "schedule+ free busy"
# Why restore-recipient has nothing to put back for a repair half done by hand, and what the
# operator does instead (the finding at discovery and the step's own no-op both say it).
STRIPPED_BEFORE_RUN = (
    "his Exchange attributes were removed before this run (a repair half done by hand), so no "
    "record of his addresses and settings exists and none is invented: he keeps only what the "
    "recipient policy stamps; put back his other proxy addresses (an X500 of his former "
    "legacyExchangeDN among them) and settings by hand, from an AD backup made before the strip"
)


@dataclass(frozen=True, slots=True)
class Params:
    servers: frozenset[str] | None
    users: frozenset[str] | None
    purge_blank: bool
    purge_freebusy: bool
    max_blank_items: int
    window: Window = field(default_factory=Window)


def _opt_time(value: JsonValue) -> datetime | None:
    return utc(str(value)) if value else None


def _opt_int(value: JsonValue) -> int | None:
    return None if value is None else int(str(value))


@dataclass(frozen=True, slots=True)
class Box:
    """A mailbox by where it lives, and what an approver needs to tell it from another."""

    guid: UUID
    server: str
    store_dn: str
    items: int
    display_name: str = ""
    size_bytes: int | None = None
    disconnected_at: datetime | None = None
    last_logon_at: datetime | None = None
    created_at: datetime | None = None

    def to_json(self) -> dict[str, JsonValue]:
        def time(value: datetime | None) -> JsonValue:
            return iso(value) if value else None

        return {
            "guid": str(self.guid),
            "server": self.server,
            "store_dn": self.store_dn,
            "items": self.items,
            "display_name": self.display_name,
            "size_bytes": self.size_bytes,
            "disconnected_at": time(self.disconnected_at),
            "last_logon_at": time(self.last_logon_at),
            "created_at": time(self.created_at),
        }

    @staticmethod
    def from_json(value: JsonValue) -> Box:
        # Selections journaled before the descriptive fields existed lack them.
        data = as_dict(value)
        return Box(
            UUID(str(data["guid"])),
            str(data["server"]),
            str(data["store_dn"]),
            int(str(data["items"])),
            str(data.get("display_name") or ""),
            _opt_int(data.get("size_bytes")),
            _opt_time(data.get("disconnected_at")),
            _opt_time(data.get("last_logon_at")),
            _opt_time(data.get("created_at")),
        )

    @staticmethod
    def of(info: MailboxInfo) -> Box:
        return Box(
            info.guid,
            info.server,
            info.store_dn,
            info.item_count,
            info.display_name,
            info.size_bytes,
            info.disconnected_at,
            info.last_logon_at,
            info.created_at,
        )

    def describe(self) -> str:
        return describe_mailbox(
            self.guid,
            self.display_name,
            self.items,
            size_bytes=self.size_bytes,
            created_at=self.created_at,
            last_logon_at=self.last_logon_at,
            disconnected_at=self.disconnected_at,
        )


@dataclass(frozen=True, slots=True)
class AffectedUser:
    """A user to repair. ``blank`` is None where there is nothing to export or disconnect: the
    store never created the mailbox his msExchMailboxGuid names, or the repair was half done by
    hand (already stripped: ``stripped``, and then nothing records his recipient settings)."""

    guid: UUID
    dn: str
    sam: str
    home_server: str
    blank: Box | None
    original: Box
    display_name: str = ""
    evidence: str = ""
    stripped: bool = False

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "guid": str(self.guid),
            "dn": self.dn,
            "sam": self.sam,
            "home_server": self.home_server,
            "display_name": self.display_name,
            "blank": self.blank.to_json() if self.blank else None,
            "original": self.original.to_json(),
            "evidence": self.evidence,
            "stripped": self.stripped,
        }

    @staticmethod
    def from_json(value: JsonValue) -> AffectedUser:
        data = as_dict(value)
        blank = data.get("blank")
        return AffectedUser(
            UUID(str(data["guid"])),
            str(data["dn"]),
            str(data["sam"]),
            str(data["home_server"]),
            Box.from_json(blank) if blank is not None else None,
            Box.from_json(data["original"]),
            str(data.get("display_name") or ""),
            str(data.get("evidence") or ""),
            data.get("stripped") is True,
        )

    @staticmethod
    def of(decision: Decision, home_server: str) -> AffectedUser:
        user = decision.user
        return AffectedUser(
            user.guid,
            user.dn,
            user.sam_account_name,
            home_server,
            Box.of(decision.blank) if decision.blank else None,
            Box.of(decision.original),
            user.get("displayName") or "",
            decision.evidence,
            decision.stripped,
        )

    @property
    def target(self) -> UserTarget:
        return UserTarget(self.guid, self.dn, self.sam)

    @property
    def items_expected(self) -> int:
        return self.original.items + (self.blank.items if self.blank else 0)

    def for_approver(self) -> str:
        """Who, which two mailboxes, and why: what catches a wrong pairing."""
        blank = self.blank.describe() if self.blank else "none (never created, or gone)"
        return (
            f"user {self.display_name!r}; original {self.original.describe()}; blank "
            f"{blank}; decided by {self.evidence}"
        )


@dataclass(frozen=True, slots=True)
class Selection:
    users: tuple[AffectedUser, ...]
    services: tuple[tuple[str, str], ...]  # (server, service) that were running: stop, restart
    servers: tuple[ServerInfo, ...]
    dcs: tuple[str, ...]
    purge: tuple[Box, ...]  # blank / Schedule+ Free Busy mailboxes to purge (opt-in)

    def to_json(self) -> JsonValue:
        return {
            "users": [user.to_json() for user in self.users],
            "services": [[server, service] for server, service in self.services],
            "servers": [server.to_json() for server in self.servers],
            "dcs": list(self.dcs),
            "purge": [box.to_json() for box in self.purge],
        }

    def summary(self) -> dict[str, int]:
        return {
            "users": len(self.users),
            "services": len(self.services),
            "mailboxes_to_purge": len(self.purge),
        }

    def scope(self) -> Scope:
        boxes = [(u.blank.server, u.blank.guid) for u in self.users if u.blank]
        boxes += [(u.original.server, u.original.guid) for u in self.users]
        boxes += [(box.server, box.guid) for box in self.purge]
        return Scope(
            objects=tuple(u.guid for u in self.users),
            mailboxes=tuple(dict.fromkeys(boxes)),
            services=self.services,
        )

    def without(self, keys: Collection[str]) -> Selection:
        def drifted(user: AffectedUser) -> bool:
            own = {object_key(user.guid), mailbox_key(user.original.server, user.original.guid)}
            if user.blank:
                own.add(mailbox_key(user.blank.server, user.blank.guid))
            return not own.isdisjoint(keys)

        users = tuple(u for u in self.users if not drifted(u))
        blanks = {u.blank.guid for u in self.users if u.blank}
        kept = {u.blank.guid for u in users if u.blank}
        return replace(
            self,
            users=users,
            services=tuple(s for s in self.services if service_key(*s) not in keys),
            purge=tuple(
                b
                for b in self.purge
                if mailbox_key(b.server, b.guid) not in keys
                and (b.guid in kept or b.guid not in blanks)
            ),
        )

    def server(self, name: str) -> ServerInfo:
        return next(server for server in self.servers if server.name == name)

    @property
    def readers(self) -> list[DirectoryUse]:
        """What each server holding an affected user's mailbox reads AD through: its cleanup
        agent and its reconnect see a change only there."""
        holding = {box.server for u in self.users for box in (u.blank, u.original) if box}
        return [server.use for server in self.servers if server.name in holding]


class VerifyReconnected(Step[UserOnServer, str | None]):
    """Each user connected, on every DC, to the original mailbox holding all their items. A
    batch per server (the users whose original mailbox is there): the servers are read
    concurrently."""

    name = "verify"
    impact = Impact.READ
    summary = "Verify: each user is connected to the original mailbox, which holds every item"
    wording = Wording("verify", "user", "users")

    def __init__(self, selection: Selection) -> None:
        super().__init__(
            lambda: [UserOnServer(user.target, user.original.server) for user in selection.users]
        )
        self.selection = selection

    def observe(
        self, ctx: StepContext, targets: Sequence[UserOnServer]
    ) -> Mapping[str, str | None]:
        by_guid = {user.guid: user for user in self.selection.users}
        users = [by_guid[target.user.guid] for target in targets]
        problems: dict[str, str | None] = {target.key: None for target in targets}

        def report(key: str, problem: str) -> None:
            problems[key] = problems[key] or problem

        for dc in reachable(self.selection.dcs, ctx.options):
            seen = ctx.world.directory.read([user.guid for user in users], dc)
            for user in users:
                entry = seen.get(user.guid)
                if entry is None or entry.mailbox_guid != user.original.guid:
                    report(user.target.key, f"{dc} does not show the user on the original mailbox")
        # One server per batch; any set of targets is observed right all the same.
        for server in sorted({user.original.server for user in users}):
            on_server = [u for u in users if u.original.server == server]
            boxes = {
                box.guid: box
                for box in ctx.world.exchange.mailboxes(
                    server, [u.original.guid for u in on_server]
                )
                if box.live
            }
            for user in on_server:
                box = boxes.get(user.original.guid)
                if box is None or box.owner != user.guid or box.disconnected:
                    report(user.target.key, f"original mailbox on {server} is not connected")
                elif box.item_count < user.items_expected:
                    report(
                        user.target.key,
                        f"original mailbox holds {box.item_count} items, "
                        f"expected at least {user.items_expected}",
                    )
        return problems

    def plan(self, target: UserOnServer, observation: str | None) -> Change:
        return NoOp(target.key) if observation is None else WouldFail(target.key, observation)

    def apply(self, ctx: StepContext, pending: Sequence[tuple[UserOnServer, Any]]) -> None:
        """Verification changes nothing."""


def _home(user: AffectedUser) -> Box:
    """Where the user's mailbox is now: the blank's server, else the original's (Disable-Mailbox
    runs there on 2007+)."""
    return user.blank or user.original


def _home_servers(
    world: World, versions: Mapping[str, ExchangeVersion], decisions: Sequence[Decision]
) -> dict[str, str]:
    """Store DN (normalized) -> the msExchHomeServerName its users carry, read only where an
    Exchange 2000 user to re-home in AD has lost his (a repair half done by hand): Exchange
    2000 has no Reconnect, and the re-home writes that value (MBConn's way)."""
    if not any(
        versions[d.original.server] is ExchangeVersion.E2000
        and not d.user.get("msExchHomeServerName")
        for d in decisions
    ):
        return {}
    homes: dict[str, str] = {}
    for user in world.directory.find_users(UserQuery(mail_enabled_only=True)):
        store, home = user.get("homeMDB"), user.get("msExchHomeServerName")
        if store and home:
            homes.setdefault(_normal(store), home)
    return homes


def _is_free_busy(box: MailboxInfo) -> bool:
    return FREE_BUSY_MARKER in (box.legacy_dn + box.display_name).lower()


def _normal(dn: str) -> str:
    try:
        return normalize(dn)
    except ValueError:
        return dn.lower()


def _store_label(store_dn: str) -> str:
    try:
        return rdn_value(store_dn)
    except ValueError:
        return store_dn


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError("is not a whole number") from None
    if value < 0:
        raise ValueError("must not be negative")
    return value


class Kb278447(Playbook[Params, Selection]):
    name = "kb278447"
    title = "Users connected to empty mailboxes after a failed Exchange 5.5 -> 2000 upgrade"
    kb = "https://support.microsoft.com/kb/278447"
    description = (
        "Finds users connected to a new blank mailbox while their original mailbox is "
        "disconnected, by evidence: what earlier runs repaired (never reversed), the failed "
        "upgrade's window, identity (legacyExchangeDN or objectGUID, display name, a user never "
        "owns a mailbox disconnected before he existed) and content (the original holds more); "
        "stops transport, exports the blank mailbox, removes the user's Exchange attributes, "
        "waits for AD and the cleanup agent, reconnects the original mailbox, imports the new "
        "items into it, restores the addresses and recipient settings the strip removed and "
        "starts transport again. Users the evidence does not settle, and users whose repair "
        "would fail, are reported, never guessed."
    )
    parameters = (
        Parameter(
            "servers",
            "only these Exchange servers (comma-separated)",
            parse_names,
            "EXCH01",
            default="every server",
        ),
        Parameter(
            "users",
            "only these sAMAccountNames (comma-separated)",
            parse_names,
            "jdoe,asmith",
            default="every affected user",
        ),
        Parameter(
            "disconnected_after",
            "the failed upgrade began (ISO 8601): only a mailbox "
            "the store marked disconnected inside the window can be an original",
            parse_datetime,
            "2026-10-31T20:00:00Z",
            default="none: decided without the window",
        ),
        Parameter(
            "disconnected_before",
            "the failed upgrade's window ended (ISO 8601, inclusive)",
            parse_datetime,
            "2026-11-01T06:00:00Z",
            default="none: decided without the window",
        ),
        Parameter(
            "purge_blank",
            "purge the blank mailboxes once empty of use (true/false)",
            parse_bool,
            "false",
            default="false",
        ),
        Parameter(
            "purge_freebusy",
            "purge the legacy SCHEDULE+ FREE BUSY mailbox (true/false)",
            parse_bool,
            "false",
            default="false",
        ),
        Parameter(
            "max_blank_items",
            "without a window, a connected mailbox with more items is never taken for the blank",
            _positive_int,
            "100",
            default="100",
        ),
    )
    outline = (
        StopService,
        ExportMail,
        RemoveExchangeAttributes,
        WaitForReplication,
        RunCleanupAgent,
        ReconnectMailbox,
        UpdateRecipient,
        OutlineStep(WaitForReplication, "wait-for-replication-after-reconnect"),
        OutlineStep(
            RunCleanupAgent,
            "run-cleanup-agent-after-reconnect",
            when="only for Exchange 2000 stores (clears the store's stale mark)",
        ),
        ImportMail,
        RestoreRecipient,
        OutlineStep(WaitForRestore, "wait-for-replication-after-restore"),
        VerifyRecipient,
        StartService,
        OutlineStep(PurgeMailbox, when="only with -p purge_blank=true or purge_freebusy=true"),
        VerifyReconnected,
    )
    notice = (
        "Affected users are connected to a new blank mailbox now; after the run they are "
        "back on their original mailbox with the items from the blank one imported into it.",
        "During the run: transport is stopped on the affected servers; each affected user "
        "has no mailbox between remove-exchange-attributes and reconnect-mailbox, and only "
        "the recipient policy's addresses (mail to any other of his addresses bounces, "
        "forwarding and delegates are off, he may show in address lists he was hidden from) "
        "until restore-recipient; transport starts again only after it.",
    )
    disruptions = (
        Disruption(
            "transport stopped (no mail in or out on the affected servers)",
            "stop-service",
            "start-service",
        ),
        Disruption("users without a mailbox", "remove-exchange-attributes", "reconnect-mailbox"),
        Disruption(
            "users with only the recipient policy's addresses (forwarding and "
            "delegates off, other addresses unknown to Exchange)",
            "reconnect-mailbox",
            "restore-recipient",
        ),
    )
    rollback_order = (
        "To undo the whole run, in reverse order: start any service left stopped; remove "
        "imported items if needed; disconnect the reconnected original mailbox; reconnect "
        "the blank mailbox (or re-import the stripped attributes: `ldifde -i -f "
        "backups/ad/remove-exchange-attributes-<...>.ldif -s <DC>`). The users are then back "
        "where they started, with the original mailbox disconnected."
    )

    def parse(self, raw: Mapping[str, str]) -> Params:
        values = parse_parameters(self.name, self.parameters, raw)
        window = Window(values.get("disconnected_after"), values.get("disconnected_before"))
        if window.after and window.before and window.after > window.before:
            raise InputError(
                f"disconnected_after={raw['disconnected_after']} is later than "
                f"disconnected_before={raw['disconnected_before']}",
                target=f"playbook {self.name}",
                hint="give the failed upgrade's start as disconnected_after and its end as "
                "disconnected_before",
            )
        return Params(
            values.get("servers"),
            values.get("users"),
            bool(values.get("purge_blank", False)),
            bool(values.get("purge_freebusy", False)),
            int(values.get("max_blank_items", 100)),
            window,
        )

    def discover(self, world: World, params: Params) -> Discovery[Selection]:
        return self.discover_with_history(world, params, NoHistory())

    def discover_with_history(
        self, world: World, params: Params, history: RunHistory
    ) -> Discovery[Selection]:
        servers = self._servers(world, params)
        every = [
            box
            for boxes in read_each(world.clock, servers, lambda s: world.exchange.mailboxes(s.name))
            for box in boxes
        ]
        # A recovery or soft-deleted copy is never a candidate: reported once the selection
        # says which mailboxes the run acts on.
        mailboxes = [box for box in every if box.live]
        judge = Judge(Rules(params.window, params.max_blank_items), self._history(history))
        claimed = self._judge_mail_enabled(world, params, servers, mailboxes, judge)
        self._judge_stripped(world, params, mailboxes, claimed, judge)
        judge.claimed_twice()
        affected, unrepairable = self._repairable(world, servers, judge.decisions)
        purge, not_purged = self._purge_list(params, affected, mailboxes)
        services = self._running_delivery(world, list(world.exchange.servers()), affected)
        selection = Selection(
            tuple(affected),
            tuple(services),
            tuple(servers),
            tuple(world.directory.domain_controllers()),
            tuple(purge),
        )
        copies = copies_left_alone(every, [guid for _, guid in selection.scope().mailboxes])
        return Discovery(selection, tuple(judge.findings + unrepairable + not_purged + copies))

    def _servers(self, world: World, params: Params) -> list[ServerInfo]:
        servers = [ServerInfo.of(server) for server in world.exchange.servers()]
        if params.servers is None:
            return servers
        known = {server.name.lower() for server in servers}
        unknown = sorted(name for name in params.servers if name.lower() not in known)
        if unknown:
            raise InputError(
                f"unknown Exchange server(s): {', '.join(unknown)}",
                target=f"playbook {self.name}",
                hint=f"known servers: {', '.join(s.name for s in servers)}",
            )
        wanted = {name.lower() for name in params.servers}
        return [server for server in servers if server.name.lower() in wanted]

    def _history(self, history: RunHistory) -> History:
        """The pairings earlier runs of this playbook completed, and the users of runs that
        changed something and did not finish."""
        known = History()
        for run in history.runs(self.name):
            try:
                selection = self.load_selection(run.selection)
            except (ValueError, KeyError, TypeError):
                continue  # a run stopped before discovery recorded its selection
            for user in selection.users:
                known.add(
                    Pairing(
                        user.guid,
                        user.original.guid,
                        user.blank.guid if user.blank else None,
                        run.run_id,
                    ),
                    finished=run.finished,
                )
        return known

    @staticmethod
    def _judge_mail_enabled(
        world: World,
        params: Params,
        servers: Sequence[ServerInfo],
        mailboxes: Sequence[MailboxInfo],
        judge: Judge,
    ) -> set[UUID]:
        """Judge each mail-enabled user with a candidate; returns the mailboxes they claim."""
        by_legacy = legacy_dn_index(mailboxes)
        by_guid = {box.guid: box for box in mailboxes}
        stores = {
            _normal(store.dn)
            for found in read_each(world.clock, servers, lambda s: world.exchange.stores(s.name))
            for store in found
        }
        users = world.directory.find_users(
            UserQuery(sam_account_names=params.users, mail_enabled_only=True)
        )
        claimed: set[UUID] = set()
        for user in sorted(users, key=lambda entry: entry.dn.lower()):
            current = by_guid.get(user.mailbox_guid) if user.mailbox_guid else None
            if current is None and _normal(user.get("homeMDB") or "") not in stores:
                continue  # his mailbox lives on a server out of scope (or nowhere we can tell)
            legacy = (user.get("legacyExchangeDN") or "").lower()
            by_dn = by_legacy.get(legacy, []) if legacy else []
            own = by_guid.get(user.guid)
            own = own if own is not None and own.disconnected else None
            claimed.update(box.guid for box in by_dn)
            if own is not None:
                claimed.add(own.guid)
            judge.mail_enabled(user, current, by_dn, own)
        return claimed

    @staticmethod
    def _judge_stripped(
        world: World,
        params: Params,
        mailboxes: Sequence[MailboxInfo],
        claimed: set[UUID],
        judge: Judge,
    ) -> None:
        """Repairs half done by hand: disconnected mailboxes no mail-enabled user claims, whose
        objectGUID or alias names a user without Exchange attributes."""
        orphans = [
            box
            for box in mailboxes
            if box.disconnected
            and box.owner is None
            and box.guid not in claimed
            and box.guid not in judge.history.old_blanks
            and not _is_free_busy(box)
        ]
        if not orphans:
            return
        directory = world.directory
        found = directory.read([box.guid for box in orphans], directory.writable_dc())
        wanted = None if params.users is None else {name.lower() for name in params.users}

        def in_scope(user: DirectoryEntry) -> bool:
            return user.object_class == "user" and (
                wanted is None or user.sam_account_name.lower() in wanted
            )

        aliases = frozenset(a for box in orphans if (a := alias_of(box.legacy_dn)) is not None)
        by_sam = (
            {
                user.sam_account_name.lower(): user
                for user in directory.find_users(UserQuery(sam_account_names=aliases))
                if in_scope(user)
            }
            if aliases
            else {}
        )
        by_guid = {guid: user for guid, user in found.items() if in_scope(user)}
        owners = stripped_owners(orphans, by_guid, by_sam)
        for user, boxes in sorted(owners.values(), key=lambda pair: pair[0].dn.lower()):
            judge.stripped(user, boxes)

    @staticmethod
    def _repairable(
        world: World, servers: Sequence[ServerInfo], decisions: Sequence[Decision]
    ) -> tuple[list[AffectedUser], list[Finding]]:
        """The users whose repair can be done; the others left out with why (one user whose
        mail cannot be exported must not stop everyone else's repair), and the repaired users
        whose recipient settings cannot be restored."""
        versions = {server.name: server.version for server in servers}
        refusals = dict(
            zip(
                [server.name for server in servers],
                read_each(
                    world.clock,
                    servers,
                    lambda server: world.exchange.mail_export_refusal(server.name),
                ),
                strict=True,
            )
        )
        homes = _home_servers(world, versions, decisions)
        affected: list[AffectedUser] = []
        findings: list[Finding] = []
        for decision in decisions:
            blank, original = decision.blank, decision.original
            home = decision.user.get("msExchHomeServerName") or homes.get(
                _normal(original.store_dn), ""
            )
            why = None
            if not home and versions[original.server] is ExchangeVersion.E2000:
                why = (
                    f"Exchange 2000 has no Reconnect: the user is re-homed in AD, which needs "
                    f"the msExchHomeServerName of {original.server}, and neither he (his "
                    "Exchange attributes were removed) nor any user of that store has one"
                )
            if original.owner not in (None, decision.user.guid):
                why = (
                    f"his original mailbox {original.guid} on {original.server} is linked to "
                    f"another user ({original.owner}) as that server's DC sees it"
                )
            if blank is not None and blank.item_count:
                for box in (blank, original):
                    why = (
                        why
                        or refusals.get(box.server)
                        or mailbox_list_refusal(box.server, versions[box.server], [box])
                    )
            if why is None:
                affected.append(AffectedUser.of(decision, home))
                if decision.stripped:
                    findings.append(
                        Finding(
                            NOT_RESTORED,
                            decision.user.dn,
                            "his original is "
                            "reconnected, but restore-recipient leaves his "
                            "recipient settings as they are: " + STRIPPED_BEFORE_RUN,
                        )
                    )
            else:
                findings.append(
                    Finding(
                        LEFT_OUT,
                        decision.user.dn,
                        f"its repair would fail, so "
                        f"it is left out and the others are repaired: {why}",
                    )
                )
        return affected, findings

    @staticmethod
    def _purge_list(
        params: Params, affected: Sequence[AffectedUser], mailboxes: Sequence[MailboxInfo]
    ) -> tuple[list[Box], list[Finding]]:
        purge = [user.blank for user in affected if user.blank] if params.purge_blank else []
        kept: list[Finding] = []
        if params.purge_freebusy:
            for box in mailboxes:
                if not (box.disconnected and box.owner is None and _is_free_busy(box)):
                    continue
                if not box.item_count:
                    purge.append(Box.of(box))
                    continue
                # No export tool opens a disconnected mailbox (ExMerge and
                # New-MailboxExportRequest find a mailbox through its user), and nothing is
                # purged here without an export: kept, and the run goes on.
                kept.append(
                    Finding(
                        NOT_PURGED,
                        box.display_name,
                        f"the legacy Free/Busy "
                        f"mailbox {describe(box)} on {box.server} holds items and is "
                        "disconnected, so no export tool can copy them first: not "
                        "purged; reconnect it to a helper account and export it, "
                        "then purge it by hand",
                    )
                )
        return purge, kept

    @staticmethod
    def _running_delivery(
        world: World, organisation: Sequence[ExchangeServer], affected: Sequence[AffectedUser]
    ) -> list[tuple[str, str]]:
        """What delivers into the databases of the affected users' mailboxes and runs now,
        server by server (see ``delivering_services``)."""
        involved = {u.blank.server for u in affected if u.blank}
        involved |= {u.original.server for u in affected}
        wanted: dict[str, list[str]] = {}
        for home in organisation:
            if home.name in involved:
                for server, service in delivering_services(home, organisation):
                    if service not in wanted.setdefault(server, []):
                        wanted[server].append(service)

        def read(server: str) -> tuple[list[str], dict[str, list[str]]]:
            names = wanted[server]
            states = world.exchange.service_states(server, names)
            stopping = [n for n in names if states.get(n) is ServiceState.RUNNING]
            # Stop-Service -Force stops what depends on them too: listed first (stopped before
            # them), so it is recorded and started again with them.
            return stopping, (
                world.exchange.running_dependents(server, stopping) if stopping else {}
            )

        running: list[tuple[str, str]] = []
        for server, (stopping, dependents) in zip(
            wanted, read_each(world.clock, list(wanted), read), strict=True
        ):
            for name in stopping:
                running += [
                    (server, d)
                    for d in dependents.get(name, [])
                    if (server, d) not in running and d not in stopping
                ]
                running.append((server, name))
        return running

    def steps(self, selection: Selection) -> list[Step[Any, Any]]:
        # Each step's targets are made when that step starts and let go when it ends (the
        # engine's forget_targets): at 100,000 users all of them at once are about 100 MB.
        users = selection.users

        def services() -> list[ServiceTarget]:
            return [ServiceTarget(server, service) for server, service in selection.services]

        def stripped() -> list[ReplicationTarget]:
            return replication_targets(
                selection.dcs,
                [
                    Expectation(u.guid, attributes=(("msExchMailboxGuid", None), ("homeMDB", None)))
                    for u in users
                ],
                selection.readers,
            )

        def reconnected() -> list[ReplicationTarget]:
            return replication_targets(
                selection.dcs,
                [
                    Expectation(u.guid, attributes=(("msExchMailboxGuid", str(u.original.guid)),))
                    for u in users
                ],
                selection.readers,
            )

        def blank_stores() -> list[StoreTarget]:
            blank_by_store: dict[tuple[str, str], list[UUID]] = {}
            for user in users:
                if user.blank:
                    blank_by_store.setdefault((user.blank.server, user.blank.store_dn), []).append(
                        user.blank.guid
                    )
            return [
                StoreTarget(server, store, _store_label(store), tuple(guids))
                for (server, store), guids in blank_by_store.items()
            ]

        steps: list[Step[Any, Any]] = [
            StopService(services),
            ExportMail(
                lambda: [
                    MailboxTarget(u.blank.server, u.blank.store_dn, u.blank.guid, u.sam)
                    for u in users
                    if u.blank
                ]
            ),
            RemoveExchangeAttributes(lambda: [self._strip_target(selection, u) for u in users]),
            WaitForReplication(stripped),
            RunCleanupAgent(blank_stores),
            ReconnectMailbox(
                lambda: [
                    ReconnectTarget(
                        u.original.server,
                        selection.server(u.original.server).version.value,
                        u.original.store_dn,
                        u.original.guid,
                        u.guid,
                        u.dn,
                        u.home_server,
                        u.for_approver(),
                    )
                    for u in users
                ]
            ),
            update_recipients(selection),
            WaitForReplication(reconnected, step_id="wait-for-replication-after-reconnect"),
            RunCleanupAgent(
                lambda: self._rehomed_stores(selection), step_id="run-cleanup-agent-after-reconnect"
            ),
            ImportMail(
                lambda: [
                    ImportTarget(
                        u.original.server,
                        u.blank.server,
                        u.blank.guid,
                        u.original.guid,
                        u.sam,
                        u.original.store_dn,
                    )
                    for u in users
                    if u.blank
                ]
            ),
            *restore_recipient_steps(selection),
            StartService(services),
        ]
        if selection.purge:
            steps.append(
                PurgeMailbox(
                    lambda: [
                        MailboxTarget(box.server, box.store_dn, box.guid, "blank")
                        for box in selection.purge
                    ]
                )
            )
        steps.append(VerifyReconnected(selection))
        return steps

    @staticmethod
    def _strip_target(selection: Selection, user: AffectedUser) -> StripTarget:
        """Before a user is stripped, what reconnects the original must be sure to work:
        Exchange 2003 reconnects by sAMAccountName (unique in the forest?), 2007 and later
        are asked (Connect-Mailbox -ValidateOnly)."""
        reconnecting = selection.server(user.original.server).version
        return StripTarget(
            user.target,
            _home(user).server,
            selection.server(_home(user).server).version,
            reconnect_by_name=reconnecting is ExchangeVersion.E2003,
            reconnects=None if reconnecting.legacy else (user.original.server, user.original.guid),
            reconnects_store=user.original.store_dn,
        )

    @staticmethod
    def _rehomed_stores(selection: Selection) -> list[StoreTarget]:
        """Exchange 2000 stores whose mailboxes were re-homed in AD: the cleanup agent clears
        their stale disconnected mark (no other version needs it)."""
        stores: dict[tuple[str, str], list[UUID]] = {}
        for user in selection.users:
            if selection.server(user.original.server).version is ExchangeVersion.E2000:
                key = (user.original.server, user.original.store_dn)
                stores.setdefault(key, []).append(user.original.guid)
        return [
            StoreTarget(server, store, _store_label(store), tuple(guids), reassociate=True)
            for (server, store), guids in stores.items()
        ]

    def load_selection(self, data: JsonValue) -> Selection:
        body = as_dict(data)
        services = []
        for pair in as_list(body["services"]):
            server, service = as_list(pair)
            services.append((str(server), str(service)))
        return Selection(
            tuple(AffectedUser.from_json(user) for user in as_list(body["users"])),
            tuple(services),
            tuple(ServerInfo.from_json(as_dict(server)) for server in as_list(body["servers"])),
            tuple(str(dc) for dc in as_list(body["dcs"])),
            tuple(Box.from_json(box) for box in as_list(body["purge"])),
        )


def update_recipients(selection: Selection) -> UpdateRecipient:
    """Right after the reconnect, on the same server: Exchange applies its recipient policy to
    the reconnected users (its writes then replicate with the reconnect's). On 2000/2003 the
    domain's Recipient Update Service does it for all of them at once: one Update Now, asked
    on the first of those servers."""

    def policies() -> list[PolicyTarget]:
        by_server: dict[str, list[UUID]] = {}
        legacy = [
            u.original.server
            for u in selection.users
            if selection.server(u.original.server).version.legacy
        ]
        for user in selection.users:
            server = user.original.server
            if selection.server(server).version.legacy:
                server = legacy[0]
            by_server.setdefault(server, []).append(user.guid)
        return [
            PolicyTarget(server, selection.server(server).version, tuple(guids))
            for server, guids in by_server.items()
        ]

    return UpdateRecipient(policies)


def restore_recipient_steps(selection: Selection) -> list[Step[Any, Any]]:
    """After the import: put back what the strip removed and the policy did not (last, so the
    policy cannot demote the user's own primary address or drop one the record holds), wait
    until every DC shows it, and verify it against the record."""

    def recipients() -> list[RecipientTarget]:
        return [
            RecipientTarget(
                u.target,
                u.original.server,
                selection.server(u.original.server).version,
                STRIPPED_BEFORE_RUN if u.stripped else None,
            )
            for u in selection.users
        ]

    return [
        RestoreRecipient(recipients),
        WaitForRestore(
            lambda: replication_targets(
                selection.dcs, [Expectation(u.guid) for u in selection.users], selection.readers
            ),
            step_id="wait-for-replication-after-restore",
        ),
        VerifyRecipient(recipients),
    ]
