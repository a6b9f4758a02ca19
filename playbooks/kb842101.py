"""KB842101: mailboxes merged instead of cloned after a cancelled Migration Wizard run.

Remove everything the cancelled run created in the destination (after exporting any mail that
reached it), let AD converge, let the stores disconnect the mailboxes, purge them: then the
migration can be run again in clone mode.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from remediate.engine.changes import Change, Finding, Impact, JsonValue, NoOp, WouldFail
from remediate.engine.fingerprint import Scope, mailbox_key, object_key
from remediate.engine.playbook import (
    Discovery,
    Parameter,
    Playbook,
    parse_datetime,
    parse_dn,
    parse_names,
    parse_parameters,
)
from remediate.engine.step import Step, StepContext
from remediate.engine.wording import Wording
from remediate.errors import InputError
from remediate.model import UserQuery, iso, utc
from remediate.ports import World
from remediate.steps.ad import DeleteAdUser
from remediate.steps.exchange import PurgeMailbox, RunCleanupAgent
from remediate.steps.mail import ExportMail
from remediate.steps.replication import Expectation, WaitForReplication, replication_targets
from remediate.steps.targets import MailboxTarget, StoreTarget, UserTarget

from .common import ServerInfo, as_dict, as_list, locate_mailboxes, opt_uuid, store_names


@dataclass(frozen=True, slots=True)
class Params:
    ou: str | None
    created_after: datetime | None
    created_before: datetime | None
    users: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class SelectedUser:
    guid: UUID
    dn: str
    sam: str
    when_created: datetime
    children: tuple[UUID, ...]
    mailbox: UUID | None
    server: str | None
    store_dn: str | None
    store_name: str | None
    items: int

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "guid": str(self.guid), "dn": self.dn, "sam": self.sam,
            "when_created": iso(self.when_created),
            "children": [str(child) for child in self.children],
            "mailbox": str(self.mailbox) if self.mailbox else None,
            "server": self.server, "store_dn": self.store_dn, "store_name": self.store_name,
            "items": self.items,
        }

    @staticmethod
    def from_json(value: JsonValue) -> SelectedUser:
        data = as_dict(value)
        return SelectedUser(
            guid=UUID(str(data["guid"])), dn=str(data["dn"]), sam=str(data["sam"]),
            when_created=utc(str(data["when_created"])),
            children=tuple(UUID(str(c)) for c in as_list(data["children"])),
            mailbox=opt_uuid(data["mailbox"]),
            server=str(data["server"]) if data["server"] else None,
            store_dn=str(data["store_dn"]) if data["store_dn"] else None,
            store_name=str(data["store_name"]) if data["store_name"] else None,
            items=int(str(data["items"])),
        )

    @property
    def target(self) -> UserTarget:
        return UserTarget(self.guid, self.dn, self.sam)


@dataclass(frozen=True, slots=True)
class Selection:
    users: tuple[SelectedUser, ...]
    dcs: tuple[str, ...]
    servers: tuple[ServerInfo, ...]

    def to_json(self) -> JsonValue:
        return {
            "users": [user.to_json() for user in self.users],
            "dcs": list(self.dcs),
            "servers": [server.to_json() for server in self.servers],
        }

    def summary(self) -> dict[str, int]:
        return {
            "users": len(self.users),
            "child_objects": sum(len(user.children) for user in self.users),
            "mailboxes": sum(1 for user in self.users if user.mailbox and user.server),
            "mailboxes_with_items": sum(1 for user in self.users if user.items),
        }

    def scope(self) -> Scope:
        return Scope(
            objects=tuple(g for user in self.users for g in (user.guid, *user.children)),
            mailboxes=tuple((u.server, u.mailbox) for u in self.with_mailbox
                            if u.server and u.mailbox),
        )

    def without(self, keys: Collection[str]) -> Selection:
        def drifted(user: SelectedUser) -> bool:
            own = {object_key(g) for g in (user.guid, *user.children)}
            if user.server and user.mailbox:
                own.add(mailbox_key(user.server, user.mailbox))
            return not own.isdisjoint(keys)

        return replace(self, users=tuple(u for u in self.users if not drifted(u)))

    @property
    def with_mailbox(self) -> list[SelectedUser]:
        return [user for user in self.users if user.mailbox and user.server]


class VerifyCloneIsSafe(Step[UserTarget, str | None]):
    """No selected object left on any DC, no mailbox of theirs in any store."""

    name = "verify"
    impact = Impact.READ
    summary = "Verify: no selected object on any DC and no mailbox of theirs in any store"
    wording = Wording("verify", "user", "users")

    def __init__(self, selection: Selection) -> None:
        super().__init__([user.target for user in selection.users])
        self.selection = selection

    def observe(self, ctx: StepContext, targets: Sequence[UserTarget]) -> Mapping[str, str | None]:
        problems: dict[str, str | None] = {target.key: None for target in targets}
        by_guid = {user.guid: user for user in self.selection.users}
        guids = [target.guid for target in targets]
        every = guids + [child for guid in guids for child in by_guid[guid].children]
        for dc in self.selection.dcs:
            seen = ctx.world.directory.read(every, dc)
            for target in targets:
                left = [g for g in (target.guid, *by_guid[target.guid].children) if g in seen]
                if left and problems[target.key] is None:
                    problems[target.key] = f"{dc} still shows {len(left)} object(s)"
        mailboxes = {user.mailbox: user for user in self.selection.with_mailbox if user.mailbox}
        for server in self.selection.servers:
            for box in ctx.world.exchange.mailboxes(server.name, list(mailboxes)):
                owner = mailboxes[box.guid]
                problems[owner.target.key] = problems[owner.target.key] or (
                    f"mailbox {box.guid} still in {server.name}"
                )
        return problems

    def plan(self, target: UserTarget, observation: str | None) -> Change:
        return NoOp(target.key) if observation is None else WouldFail(target.key, observation)

    def apply(self, ctx: StepContext, pending: Sequence[tuple[UserTarget, Any]]) -> None:
        """Verification changes nothing."""


class Kb842101(Playbook[Params, Selection]):
    name = "kb842101"
    title = "Mailboxes merged instead of cloned after a cancelled Migration Wizard run"
    kb = "https://support.microsoft.com/kb/842101"
    description = (
        "Deletes the user objects a cancelled Exchange Migration Wizard run created in the "
        "destination (scope: an OU and a whenCreated window, and/or a list of users), after "
        "exporting any mail that reached them; waits for AD replication; runs the cleanup "
        "agent; purges the disconnected mailboxes. Then clone mode is safe again."
    )
    parameters = (
        Parameter("ou", "the container the cancelled run created users in (subtree)",
                  parse_dn, "OU=Migrated,DC=corp,DC=example", required="ou or users"),
        Parameter("created_after", "only users created at or after this time (ISO 8601)",
                  parse_datetime, "2026-11-01T10:00:00Z", default="no lower bound"),
        Parameter("created_before", "only users created at or before this time (ISO 8601)",
                  parse_datetime, "2026-11-01T12:00:00Z", default="no upper bound"),
        Parameter("users", "comma-separated sAMAccountNames", parse_names, "jdoe,asmith",
                  required="ou or users"),
    )
    outline = (ExportMail, DeleteAdUser, WaitForReplication, RunCleanupAgent, PurgeMailbox,
               VerifyCloneIsSafe)
    notice = (
        "The deleted users are the destination accounts the cancelled Migration Wizard run "
        "created; their source accounts are not touched. A user who already logged on to a "
        "destination mailbox (an initialized mailbox, the cause of the merge) loses it; the "
        "mail that reached it is exported first.",
        "After the run, re-run the Migration Wizard in clone mode.",
    )
    rollback_order = (
        "To undo the whole run: reanimate the deleted users from their tombstones (parents "
        "before children) and restore their attributes from the LDIF; then, for each "
        "mailbox, reconnect it if it was not purged yet, or create a mailbox and import its "
        "export if it was."
    )

    def parse(self, raw: Mapping[str, str]) -> Params:
        values = parse_parameters(self.name, self.parameters, raw)
        params = Params(values.get("ou"), values.get("created_after"),
                        values.get("created_before"), values.get("users"))
        if params.ou is None and params.users is None:
            raise InputError(
                "needs a scope: an OU (with a whenCreated window) and/or a list of users",
                target=f"playbook {self.name}",
                hint="e.g. -p ou=OU=Migrated,DC=corp,DC=example "
                "-p created_after=2026-11-01T10:00:00Z -p created_before=2026-11-01T12:00:00Z",
            )
        if (params.created_after and params.created_before
                and params.created_after > params.created_before):
            raise InputError("created_after is later than created_before",
                             target=f"playbook {self.name}", hint="swap the two times")
        return params

    def discover(self, world: World, params: Params) -> Discovery[Selection]:
        directory, exchange = world.directory, world.exchange
        query = UserQuery(base_dn=params.ou, created_after=params.created_after,
                          created_before=params.created_before,
                          sam_account_names=params.users)
        found = sorted(directory.find_users(query), key=lambda entry: entry.dn.lower())
        findings = self._missing_users(params, [entry.sam_account_name for entry in found])
        dc = directory.writable_dc()
        below = directory.descendants([entry.guid for entry in found], dc)
        servers = list(exchange.servers())
        boxes = locate_mailboxes(exchange, servers,
                                 [g for entry in found if (g := entry.mailbox_guid)])
        names = store_names(exchange, servers) if boxes else {}
        users = []
        for entry in found:
            box = boxes.get(entry.mailbox_guid) if entry.mailbox_guid else None
            users.append(SelectedUser(
                guid=entry.guid, dn=entry.dn, sam=entry.sam_account_name,
                when_created=entry.when_created,
                children=tuple(child.guid for child in below.get(entry.guid, [])),
                mailbox=entry.mailbox_guid,
                server=box.server if box else None,
                store_dn=box.store_dn if box else None,
                store_name=names.get(box.store_dn.lower()) if box else None,
                items=box.item_count if box else 0,
            ))
        selection = Selection(tuple(users), tuple(directory.domain_controllers()),
                              tuple(ServerInfo.of(server) for server in servers))
        return Discovery(selection, tuple(findings))

    @staticmethod
    def _missing_users(params: Params, found: Sequence[str]) -> list[Finding]:
        if params.users is None:
            return []
        present = {name.lower() for name in found}
        return [
            Finding("not-found", name, "no such user in scope (already deleted?): nothing to do")
            for name in sorted(params.users) if name.lower() not in present
        ]

    def steps(self, selection: Selection) -> list[Step[Any, Any]]:
        boxes = [
            MailboxTarget(user.server, user.store_dn or "", user.mailbox, user.sam)
            for user in selection.with_mailbox
            if user.server and user.mailbox
        ]
        stores: dict[tuple[str, str], list[SelectedUser]] = {}
        for user in selection.with_mailbox:
            stores.setdefault((user.server or "", user.store_dn or ""), []).append(user)
        deletions = [
            Expectation(guid, deleted=True)
            for user in selection.users for guid in (user.guid, *user.children)
        ]
        return [
            ExportMail(boxes),
            DeleteAdUser([user.target for user in selection.users]),
            WaitForReplication(replication_targets(selection.dcs, deletions)),
            RunCleanupAgent([
                StoreTarget(server, store_dn, users[0].store_name or store_dn,
                            tuple(u.mailbox for u in users if u.mailbox))
                for (server, store_dn), users in stores.items()
            ]),
            PurgeMailbox(boxes),
            VerifyCloneIsSafe(selection),
        ]

    def load_selection(self, data: JsonValue) -> Selection:
        body = as_dict(data)
        return Selection(
            tuple(SelectedUser.from_json(user) for user in as_list(body["users"])),
            tuple(str(dc) for dc in as_list(body["dcs"])),
            tuple(ServerInfo.from_json(as_dict(server)) for server in as_list(body["servers"])),
        )
