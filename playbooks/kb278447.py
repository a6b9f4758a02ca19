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
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from remediate.dn import rdn_value
from remediate.engine.changes import Change, Finding, Impact, JsonValue, NoOp, WouldFail
from remediate.engine.fingerprint import Scope, mailbox_key, object_key, service_key
from remediate.engine.playbook import (
    Discovery,
    Parameter,
    Playbook,
    parse_bool,
    parse_names,
    parse_parameters,
)
from remediate.engine.step import Step, StepContext
from remediate.errors import InputError
from remediate.model import DirectoryEntry, ExchangeVersion, MailboxInfo, ServiceState, UserQuery
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
    Expectation,
    ReplicationTarget,
    WaitForReplication,
    replication_targets,
)
from remediate.steps.services import StartService, StopService
from remediate.steps.targets import (
    ImportTarget,
    MailboxTarget,
    ReconnectTarget,
    ServiceTarget,
    StoreTarget,
    UserTarget,
)

from .common import ServerInfo, as_dict, as_list

FREE_BUSY_MARKER = "schedule+ free busy"


@dataclass(frozen=True, slots=True)
class Params:
    servers: frozenset[str] | None
    users: frozenset[str] | None
    purge_blank: bool
    purge_freebusy: bool
    max_blank_items: int


@dataclass(frozen=True, slots=True)
class Box:
    """A mailbox by where it lives."""

    guid: UUID
    server: str
    store_dn: str
    items: int

    def to_json(self) -> dict[str, JsonValue]:
        return {"guid": str(self.guid), "server": self.server, "store_dn": self.store_dn,
                "items": self.items}

    @staticmethod
    def from_json(value: JsonValue) -> Box:
        data = as_dict(value)
        return Box(UUID(str(data["guid"])), str(data["server"]), str(data["store_dn"]),
                   int(str(data["items"])))

    @staticmethod
    def of(info: MailboxInfo) -> Box:
        return Box(info.guid, info.server, info.store_dn, info.item_count)


@dataclass(frozen=True, slots=True)
class AffectedUser:
    guid: UUID
    dn: str
    sam: str
    home_server: str
    blank: Box
    original: Box

    def to_json(self) -> dict[str, JsonValue]:
        return {"guid": str(self.guid), "dn": self.dn, "sam": self.sam,
                "home_server": self.home_server, "blank": self.blank.to_json(),
                "original": self.original.to_json()}

    @staticmethod
    def from_json(value: JsonValue) -> AffectedUser:
        data = as_dict(value)
        return AffectedUser(UUID(str(data["guid"])), str(data["dn"]), str(data["sam"]),
                            str(data["home_server"]), Box.from_json(data["blank"]),
                            Box.from_json(data["original"]))

    @property
    def target(self) -> UserTarget:
        return UserTarget(self.guid, self.dn, self.sam)


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
        return {"users": len(self.users), "services": len(self.services),
                "mailboxes_to_purge": len(self.purge)}

    def scope(self) -> Scope:
        boxes = [(u.blank.server, u.blank.guid) for u in self.users]
        boxes += [(u.original.server, u.original.guid) for u in self.users]
        boxes += [(box.server, box.guid) for box in self.purge]
        return Scope(objects=tuple(u.guid for u in self.users),
                     mailboxes=tuple(dict.fromkeys(boxes)), services=self.services)

    def without(self, keys: Collection[str]) -> Selection:
        def drifted(user: AffectedUser) -> bool:
            own = {object_key(user.guid), mailbox_key(user.blank.server, user.blank.guid),
                   mailbox_key(user.original.server, user.original.guid)}
            return not own.isdisjoint(keys)

        users = tuple(u for u in self.users if not drifted(u))
        kept = {u.blank.guid for u in users}
        return replace(
            self,
            users=users,
            services=tuple(s for s in self.services if service_key(*s) not in keys),
            purge=tuple(b for b in self.purge if mailbox_key(b.server, b.guid) not in keys
                        and (b.guid in kept or b.guid not in {u.blank.guid for u in self.users})),
        )

    def server(self, name: str) -> ServerInfo:
        return next(server for server in self.servers if server.name == name)


class VerifyReconnected(Step[UserTarget, str | None]):
    """Each user connected, on every DC, to the original mailbox holding all their items."""

    name = "verify"
    impact = Impact.READ
    summary = "Verify: each user is connected to the original mailbox, which holds every item"

    def __init__(self, selection: Selection) -> None:
        super().__init__(lambda: [user.target for user in selection.users])
        self.selection = selection

    def observe(self, ctx: StepContext, targets: Sequence[UserTarget]) -> Mapping[str, str | None]:
        by_guid = {user.guid: user for user in self.selection.users}
        problems: dict[str, str | None] = {target.key: None for target in targets}

        def report(key: str, problem: str) -> None:
            problems[key] = problems[key] or problem

        for dc in self.selection.dcs:
            seen = ctx.world.directory.read(list(by_guid), dc)
            for target in targets:
                entry = seen.get(target.guid)
                if entry is None or entry.mailbox_guid != by_guid[target.guid].original.guid:
                    report(target.key, f"{dc} does not show the user on the original mailbox")
        for server in {user.original.server for user in self.selection.users}:
            users = [u for u in self.selection.users if u.original.server == server]
            boxes = {box.guid: box for box in ctx.world.exchange.mailboxes(
                server, [u.original.guid for u in users])}
            for user in users:
                box = boxes.get(user.original.guid)
                if box is None or box.owner != user.guid or box.disconnected:
                    report(user.target.key, f"original mailbox on {server} is not connected")
                elif box.item_count < user.original.items + user.blank.items:
                    report(user.target.key, f"original mailbox holds {box.item_count} items, "
                           f"expected at least {user.original.items + user.blank.items}")
        return problems

    def plan(self, target: UserTarget, observation: str | None) -> Change:
        return NoOp(target.key) if observation is None else WouldFail(target.key, observation)

    def apply(self, ctx: StepContext, pending: Sequence[tuple[UserTarget, Any]]) -> None:
        """Verification changes nothing."""


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
        "Finds users connected to a new blank mailbox while their original mailbox (matched by "
        "legacyExchangeDN, else by the objectGUID) is disconnected; stops transport, exports the "
        "blank mailbox, removes the user's Exchange attributes, waits for AD and the cleanup "
        "agent, reconnects the original mailbox, imports the new items into it, restores "
        "the addresses and recipient settings the strip removed and starts transport again. "
        "Ambiguous matches are reported, never guessed."
    )
    parameters = (
        Parameter("servers", "only these Exchange servers (comma-separated)", parse_names,
                  "EXCH01"),
        Parameter("users", "only these sAMAccountNames (comma-separated)", parse_names,
                  "jdoe,asmith"),
        Parameter("purge_blank", "purge the blank mailboxes once empty of use (true/false)",
                  parse_bool, "false"),
        Parameter("purge_freebusy", "purge the legacy SCHEDULE+ FREE BUSY mailbox (true/false)",
                  parse_bool, "false"),
        Parameter("max_blank_items", "a connected mailbox with more items is not 'blank'",
                  _positive_int, "100"),
    )
    outline = (StopService, ExportMail, RemoveExchangeAttributes, WaitForReplication,
               RunCleanupAgent, ReconnectMailbox, UpdateRecipient, ImportMail, RestoreRecipient,
               VerifyRecipient, StartService, PurgeMailbox, VerifyReconnected)

    def parse(self, raw: Mapping[str, str]) -> Params:
        values = parse_parameters(self.name, self.parameters, raw)
        return Params(values.get("servers"), values.get("users"),
                      bool(values.get("purge_blank", False)),
                      bool(values.get("purge_freebusy", False)),
                      int(values.get("max_blank_items", 100)))

    def discover(self, world: World, params: Params) -> Discovery[Selection]:
        servers = [ServerInfo.of(server) for server in world.exchange.servers()]
        if params.servers is not None:
            known = {server.name.lower() for server in servers}
            unknown = sorted(name for name in params.servers if name.lower() not in known)
            if unknown:
                raise InputError(
                    f"unknown Exchange server(s): {', '.join(unknown)}",
                    target=f"playbook {self.name}",
                    hint=f"known servers: {', '.join(s.name for s in servers)}",
                )
            wanted = {name.lower() for name in params.servers}
            servers = [server for server in servers if server.name.lower() in wanted]
        mailboxes = [box for s in servers for box in world.exchange.mailboxes(s.name)]
        users = world.directory.find_users(
            UserQuery(sam_account_names=params.users, mail_enabled_only=True))
        affected, findings = match_users(users, mailboxes, params.max_blank_items)
        purge = self._purge_list(params, affected, mailboxes)
        services = self._running_transport(world, servers, affected)
        selection = Selection(tuple(affected), tuple(services), tuple(servers),
                              tuple(world.directory.domain_controllers()), tuple(purge))
        return Discovery(selection, tuple(findings))

    @staticmethod
    def _purge_list(
        params: Params, affected: Sequence[AffectedUser], mailboxes: Sequence[MailboxInfo]
    ) -> list[Box]:
        purge = [user.blank for user in affected] if params.purge_blank else []
        if params.purge_freebusy:
            purge += [Box.of(box) for box in mailboxes
                      if box.disconnected and box.owner is None
                      and FREE_BUSY_MARKER in (box.legacy_dn + box.display_name).lower()]
        return purge

    @staticmethod
    def _running_transport(
        world: World, servers: Sequence[ServerInfo], affected: Sequence[AffectedUser]
    ) -> list[tuple[str, str]]:
        involved = {u.blank.server for u in affected} | {u.original.server for u in affected}
        running: list[tuple[str, str]] = []
        for server in servers:
            if server.name not in involved:
                continue
            names = server.version.transport_services
            states = world.exchange.service_states(server.name, names)
            running += [(server.name, n) for n in names if states.get(n) is ServiceState.RUNNING]
        return running

    def steps(self, selection: Selection) -> list[Step[Any, Any]]:
        # Each step's targets are made when that step starts and let go when it ends (the
        # engine's forget_targets): at 100,000 users all of them at once are about 100 MB.
        users = selection.users

        def services() -> list[ServiceTarget]:
            return [ServiceTarget(server, service) for server, service in selection.services]

        def stripped() -> list[ReplicationTarget]:
            return replication_targets(selection.dcs, [
                Expectation(u.guid, attributes=(("msExchMailboxGuid", None), ("homeMDB", None)))
                for u in users])

        def reconnected() -> list[ReplicationTarget]:
            return replication_targets(selection.dcs, [
                Expectation(u.guid, attributes=(("msExchMailboxGuid", str(u.original.guid)),))
                for u in users])

        def blank_stores() -> list[StoreTarget]:
            blank_by_store: dict[tuple[str, str], list[UUID]] = {}
            for user in users:
                blank_by_store.setdefault((user.blank.server, user.blank.store_dn), []).append(
                    user.blank.guid)
            return [StoreTarget(server, store, _store_label(store), tuple(guids))
                    for (server, store), guids in blank_by_store.items()]

        steps: list[Step[Any, Any]] = [
            StopService(services),
            ExportMail(lambda: [MailboxTarget(u.blank.server, u.blank.store_dn, u.blank.guid,
                                              u.sam) for u in users]),
            RemoveExchangeAttributes(lambda: [
                StripTarget(u.target, u.blank.server, selection.server(u.blank.server).version)
                for u in users]),
            WaitForReplication(stripped),
            RunCleanupAgent(blank_stores),
            ReconnectMailbox(lambda: [
                ReconnectTarget(u.original.server,
                                selection.server(u.original.server).version.value,
                                u.original.store_dn, u.original.guid, u.guid, u.dn, u.home_server)
                for u in users]),
            update_recipients(selection),
            WaitForReplication(reconnected, step_id="wait-for-replication-after-reconnect"),
            RunCleanupAgent(lambda: self._rehomed_stores(selection),
                            step_id="run-cleanup-agent-after-reconnect"),
            ImportMail(lambda: [ImportTarget(u.original.server, u.blank.server, u.blank.guid,
                                             u.original.guid, u.sam) for u in users]),
            *restore_recipient_steps(selection),
            StartService(services),
        ]
        if selection.purge:
            steps.append(PurgeMailbox(lambda: [
                MailboxTarget(box.server, box.store_dn, box.guid, "blank")
                for box in selection.purge]))
        steps.append(VerifyReconnected(selection))
        return steps

    @staticmethod
    def _rehomed_stores(selection: Selection) -> list[StoreTarget]:
        """Exchange 2000 stores whose mailboxes were re-homed in AD: the cleanup agent clears
        their stale disconnected mark (no other version needs it)."""
        stores: dict[tuple[str, str], list[UUID]] = {}
        for user in selection.users:
            if selection.server(user.original.server).version is ExchangeVersion.E2000:
                key = (user.original.server, user.original.store_dn)
                stores.setdefault(key, []).append(user.original.guid)
        return [StoreTarget(server, store, _store_label(store), tuple(guids), reassociate=True)
                for (server, store), guids in stores.items()]

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
    the reconnected users (its writes then replicate with the reconnect's)."""

    def policies() -> list[PolicyTarget]:
        by_server: dict[str, list[UUID]] = {}
        for user in selection.users:
            by_server.setdefault(user.original.server, []).append(user.guid)
        return [PolicyTarget(server, selection.server(server).version, tuple(guids))
                for server, guids in by_server.items()]

    return UpdateRecipient(policies)


def restore_recipient_steps(selection: Selection) -> list[Step[Any, Any]]:
    """After the import: put back what the strip removed and the policy did not (last, so the
    policy cannot demote the user's own primary address or drop one the record holds), wait
    until every DC shows it, and verify it against the record."""

    def recipients() -> list[RecipientTarget]:
        return [RecipientTarget(u.target, u.original.server,
                                selection.server(u.original.server).version)
                for u in selection.users]

    return [
        RestoreRecipient(recipients),
        WaitForRestore(lambda: replication_targets(
            selection.dcs, [Expectation(u.guid) for u in selection.users]),
            step_id="wait-for-replication-after-restore"),
        VerifyRecipient(recipients),
    ]


def match_users(
    users: Sequence[DirectoryEntry], mailboxes: Sequence[MailboxInfo], max_blank_items: int
) -> tuple[list[AffectedUser], list[Finding]]:
    """Pair each user with the disconnected mailbox that is theirs: by legacyExchangeDN, else by
    a mailbox GUID equal to the objectGUID. Ambiguity is reported, never resolved by guessing."""
    by_legacy: dict[str, list[MailboxInfo]] = {}
    by_guid: dict[UUID, MailboxInfo] = {}
    for box in mailboxes:
        by_guid.setdefault(box.guid, box)
        if box.disconnected:
            by_legacy.setdefault(box.legacy_dn.lower(), []).append(box)
    affected: list[AffectedUser] = []
    findings: list[Finding] = []
    for user in sorted(users, key=lambda entry: entry.dn.lower()):
        legacy = (user.get("legacyExchangeDN") or "").lower()
        candidates = by_legacy.get(legacy, []) if legacy else []
        if not candidates:
            own = by_guid.get(user.guid)
            candidates = [own] if own is not None and own.disconnected else []
        if len(candidates) > 1:
            exact = [box for box in candidates if box.guid == user.guid]
            candidates = exact or candidates
        if not candidates:
            continue
        current = by_guid.get(user.mailbox_guid) if user.mailbox_guid else None
        if len(candidates) > 1:
            findings.append(Finding(
                "ambiguous", user.dn,
                f"{len(candidates)} disconnected mailboxes match: "
                + ", ".join(str(box.guid) for box in candidates)
                + "; not touched: reconnect the right one by hand or narrow with -p users="))
            continue
        original = candidates[0]
        if current is None or current.guid in (original.guid, user.guid):
            if current is not None and current.guid == user.guid:
                findings.append(Finding(
                    "not-affected", user.dn,
                    f"connected to the mailbox whose GUID is its objectGUID; disconnected "
                    f"mailbox {original.guid} with the same legacy DN left alone"))
            continue
        if current.item_count > max_blank_items:
            findings.append(Finding(
                "not-blank", user.dn,
                f"connected mailbox {current.guid} holds {current.item_count} items "
                f"(> max_blank_items={max_blank_items}); not touched"))
            continue
        affected.append(AffectedUser(
            user.guid, user.dn, user.sam_account_name,
            user.get("msExchHomeServerName") or "", Box.of(current), Box.of(original)))
    return affected, findings
