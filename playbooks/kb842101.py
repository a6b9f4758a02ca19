"""KB842101: mailboxes merged instead of cloned after a cancelled Migration Wizard run.

Remove everything the cancelled run created in the destination (after exporting any mail that
reached it), let AD converge, let the stores disconnect the mailboxes, purge them: then the
migration can be run again in clone mode.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from remediate.engine.changes import Change, Finding, Impact, JsonValue, NoOp, WouldFail
from remediate.engine.fingerprint import Scope, mailbox_key, object_key
from remediate.engine.playbook import (
    Discovery,
    Parameter,
    Playbook,
    parse_bool,
    parse_datetime,
    parse_dn,
    parse_names,
    parse_parameters,
)
from remediate.engine.step import Step, StepContext
from remediate.engine.wording import Wording
from remediate.errors import InputError
from remediate.model import DirectoryEntry, ExchangeVersion, UserQuery, iso, utc
from remediate.ports import Directory, World
from remediate.steps.ad import DeleteAdUser, RemoveExchangeAttributes, StripTarget
from remediate.steps.exchange import PurgeMailbox, RunCleanupAgent
from remediate.steps.mail import ExportMail
from remediate.steps.replication import (
    DirectoryUse,
    Expectation,
    WaitForReplication,
    reachable,
    replication_targets,
)
from remediate.steps.targets import MailboxTarget, StoreTarget, UserOnServer, UserTarget

from .common import (
    ServerInfo,
    as_dict,
    as_list,
    copies_left_alone,
    locate_mailboxes,
    opt_uuid,
    store_names,
)
from .migration_scope import Window, account_key, mailbox_made_in, never_selected, unlisted


def parse_path(value: str) -> Path:
    if not value.strip():
        raise ValueError("is not a file name")
    return Path(value)


@dataclass(frozen=True, slots=True)
class Params:
    ou: str | None
    window: Window
    users: frozenset[str] | None
    mailbox_only: bool = False
    account_list: tuple[str, ...] | None = None  # the wizard's own list of the accounts it ran on


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
    reason: str = ""  # why the scope selected it, for the approver
    keep_account: bool = False  # an existing account: only its mailbox goes (mailbox_only)

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "guid": str(self.guid),
            "dn": self.dn,
            "sam": self.sam,
            "when_created": iso(self.when_created),
            "children": [str(child) for child in self.children],
            "mailbox": str(self.mailbox) if self.mailbox else None,
            "server": self.server,
            "store_dn": self.store_dn,
            "store_name": self.store_name,
            "items": self.items,
            "reason": self.reason,
            "keep_account": self.keep_account,
        }

    @staticmethod
    def from_json(value: JsonValue) -> SelectedUser:
        data = as_dict(value)
        return SelectedUser(
            guid=UUID(str(data["guid"])),
            dn=str(data["dn"]),
            sam=str(data["sam"]),
            when_created=utc(str(data["when_created"])),
            children=tuple(UUID(str(c)) for c in as_list(data["children"])),
            mailbox=opt_uuid(data["mailbox"]),
            server=str(data["server"]) if data["server"] else None,
            store_dn=str(data["store_dn"]) if data["store_dn"] else None,
            store_name=str(data["store_name"]) if data["store_name"] else None,
            items=int(str(data["items"])),
            reason=str(data.get("reason") or ""),
            keep_account=data.get("keep_account") is True,
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
        kept = {"accounts_kept_mailbox_removed": len(self.kept)} if self.kept else {}
        return {
            "users": len(self.deleted),
            **kept,
            "child_objects": sum(len(user.children) for user in self.users),
            "mailboxes": sum(1 for user in self.users if user.mailbox and user.server),
            "mailboxes_with_items": sum(1 for user in self.users if user.items),
        }

    def scope(self) -> Scope:
        return Scope(
            objects=tuple(g for user in self.users for g in (user.guid, *user.children)),
            mailboxes=tuple(
                (u.server, u.mailbox) for u in self.with_mailbox if u.server and u.mailbox
            ),
        )

    def without(self, keys: Collection[str]) -> Selection:
        def drifted(user: SelectedUser) -> bool:
            own = {object_key(g) for g in (user.guid, *user.children)}
            if user.server and user.mailbox:
                own.add(mailbox_key(user.server, user.mailbox))
            return not own.isdisjoint(keys)

        return replace(self, users=tuple(u for u in self.users if not drifted(u)))

    @property
    def readers(self) -> list[DirectoryUse]:
        """What each server holding a selected mailbox reads AD through: its cleanup agent
        sees the deletions only there."""
        holding = {user.server for user in self.with_mailbox}
        return [server.use for server in self.servers if server.name in holding]

    @property
    def with_mailbox(self) -> list[SelectedUser]:
        return [user for user in self.users if user.mailbox and user.server]

    @property
    def deleted(self) -> list[SelectedUser]:
        """The users the cancelled run created: deleted with their children."""
        return [user for user in self.users if not user.keep_account]

    @property
    def kept(self) -> list[SelectedUser]:
        """Existing accounts the run gave a mailbox: they keep the account, lose the mailbox."""
        return [user for user in self.users if user.keep_account]


class VerifyCloneIsSafe(Step[UserOnServer, str | None]):
    """No selected object left on any DC, no mailbox of theirs left in its store. A batch per
    server (the users whose mailbox was there), so the servers are read concurrently."""

    name = "verify"
    impact = Impact.READ
    summary = "Verify: no selected object on any DC and no mailbox of theirs in its store"
    wording = Wording("verify", "user", "users")

    def __init__(self, selection: Selection) -> None:
        super().__init__(
            [
                UserOnServer(user.target, user.server if user.mailbox else None)
                for user in selection.users
            ]
        )
        self.selection = selection

    def observe(
        self, ctx: StepContext, targets: Sequence[UserOnServer]
    ) -> Mapping[str, str | None]:
        problems: dict[str, str | None] = {target.key: None for target in targets}
        by_guid = {user.guid: user for user in self.selection.users}
        users = [by_guid[target.user.guid] for target in targets]
        every = [user.guid for user in users] + [c for user in users for c in user.children]
        for dc in reachable(self.selection.dcs, ctx.options):
            seen = ctx.world.directory.read(every, dc)
            for user in users:
                if user.keep_account:
                    entry = seen.get(user.guid)
                    problem = (
                        f"{dc} no longer shows the account"
                        if entry is None
                        else f"{dc} still shows it mail-enabled"
                        if entry.mail_enabled
                        else None
                    )
                else:
                    left = [g for g in (user.guid, *user.children) if g in seen]
                    problem = f"{dc} still shows {len(left)} object(s)" if left else None
                problems[user.target.key] = problems[user.target.key] or problem
        # One server per batch; any set of targets is observed right all the same.
        mailboxes = {user.mailbox: user for user in users if user.mailbox}
        for server in sorted({t.server for t in targets if t.server is not None}):
            for box in ctx.world.exchange.mailboxes(server, list(mailboxes)):
                if not box.live:  # a recovery or soft-deleted copy: reported by discovery
                    continue
                owner = mailboxes[box.guid]
                problems[owner.target.key] = problems[owner.target.key] or (
                    f"mailbox {box.guid} still in {server}"
                )
        return problems

    def plan(self, target: UserOnServer, observation: str | None) -> Change:
        return NoOp(target.key) if observation is None else WouldFail(target.key, observation)

    def apply(self, ctx: StepContext, pending: Sequence[tuple[UserOnServer, Any]]) -> None:
        """Verification changes nothing."""


class Kb842101(Playbook[Params, Selection]):
    name = "kb842101"
    title = "Mailboxes merged instead of cloned after a cancelled Migration Wizard run"
    kb = "https://support.microsoft.com/kb/842101"
    description = (
        "Deletes the user objects a cancelled Exchange Migration Wizard run created in the "
        "destination (scope: an OU and/or a list of users, always within the run's whenCreated "
        "window), after exporting any mail that reached them; waits for AD replication; runs "
        "the cleanup agent; purges the disconnected mailboxes. Accounts the wizard only matched "
        "(critical, AdminSDHolder-protected, well-known, with sIDHistory, or older than the "
        "window) are reported, never deleted. Then clone mode is safe again."
    )
    parameters = (
        Parameter(
            "ou",
            "the container the cancelled run created users in (subtree)",
            parse_dn,
            "OU=Migrated,DC=corp,DC=example",
            required="ou or users",
        ),
        Parameter(
            "created_after",
            "the cancelled run's start: only users created at or after it (ISO 8601)",
            parse_datetime,
            "2026-11-01T10:00:00Z",
            required="always",
        ),
        Parameter(
            "created_before",
            "the cancelled run's end: only users created at or before it (ISO 8601)",
            parse_datetime,
            "2026-11-01T12:00:00Z",
            required="always",
        ),
        Parameter(
            "users",
            "comma-separated sAMAccountNames",
            parse_names,
            "jdoe,asmith",
            required="ou or users",
        ),
        Parameter(
            "mailbox_only",
            "for existing accounts the run gave a mailbox (created before "
            "the window, mailbox created in it): purge that mailbox, keep the account",
            parse_bool,
            "true",
            default="false",
        ),
        Parameter(
            "account_list",
            "the cancelled run's own account list (one sAMAccountName or "
            "DN a line, as its account page and log show them): the plan reports how it "
            "differs from what the scope selects",
            parse_path,
            "wizard-accounts.txt",
            default="none",
        ),
    )
    outline = (
        ExportMail,
        DeleteAdUser,
        RemoveExchangeAttributes,
        WaitForReplication,
        RunCleanupAgent,
        PurgeMailbox,
        VerifyCloneIsSafe,
    )
    notice = (
        "The deleted users are the destination accounts the cancelled Migration Wizard run "
        "created; their source accounts are not touched. A user who already logged on to a "
        "destination mailbox (an initialized mailbox, the cause of the merge) loses it; the "
        "mail that reached it is exported first. Accounts the wizard matched instead of "
        "creating (sIDHistory, older than the window) and critical or protected accounts are "
        "never deleted, only reported.",
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
        where = f"playbook {self.name}"
        if values.get("ou") is None and values.get("users") is None:
            raise InputError(
                "needs a scope: an OU and/or a list of users, with a whenCreated window",
                target=where,
                hint=f"e.g. {_SCOPE_EXAMPLE}",
            )
        after, before = values.get("created_after"), values.get("created_before")
        if after is None or before is None:
            missing = " and ".join(
                name
                for name, value in (("created_after", after), ("created_before", before))
                if value is None
            )
            raise InputError(
                f"needs the cancelled run's whenCreated window: {missing} missing (without it "
                "the scope also takes accounts that existed before the migration)",
                target=where,
                hint=f"e.g. {_SCOPE_EXAMPLE}",
            )
        if after > before:
            raise InputError(
                "created_after is later than created_before",
                target=where,
                hint="swap the two times",
            )
        listed = values.get("account_list")
        return Params(
            values.get("ou"),
            Window(after, before),
            values.get("users"),
            bool(values.get("mailbox_only", False)),
            None if listed is None else read_account_list(listed),
        )

    def discover(self, world: World, params: Params) -> Discovery[Selection]:
        directory, exchange = world.directory, world.exchange
        picked, findings = self._scope(directory, params)
        dc = directory.writable_dc()
        below = directory.descendants([entry.guid for entry, _, _ in picked], dc)
        servers = list(exchange.servers())
        guids = [g for entry, _, _ in picked if (g := entry.mailbox_guid)]
        boxes, copies = locate_mailboxes(world, servers, guids)
        findings += copies_left_alone(copies, guids)
        names = store_names(world, servers) if boxes else {}
        users = []
        for entry, reason, keep in picked:
            box = boxes.get(entry.mailbox_guid) if entry.mailbox_guid else None
            users.append(
                SelectedUser(
                    guid=entry.guid,
                    dn=entry.dn,
                    sam=entry.sam_account_name,
                    when_created=entry.when_created,
                    children=() if keep else tuple(c.guid for c in below.get(entry.guid, [])),
                    mailbox=entry.mailbox_guid,
                    server=box.server if box else None,
                    store_dn=box.store_dn if box else None,
                    store_name=names.get(box.store_dn.lower()) if box else None,
                    items=box.item_count if box else 0,
                    reason=reason,
                    keep_account=keep,
                )
            )
        if params.account_list is not None:
            findings += _list_differences(params.account_list, users)
        selection = Selection(
            tuple(users),
            tuple(directory.domain_controllers()),
            tuple(ServerInfo.of(server) for server in servers),
        )
        return Discovery(selection, tuple(findings))

    def _scope(
        self, directory: Directory, params: Params
    ) -> tuple[list[tuple[DirectoryEntry, str, bool]], list[Finding]]:
        """The users to act on (entry, why, keep the account) and what was left out, and why.
        A scope naming what does not exist is an error: "nothing to do" would let the operator
        run clone mode again believing the cleanup was done."""
        window = params.window
        if params.ou is not None and directory.lookup(params.ou) is None:
            raise InputError(
                f"ou={params.ou} does not exist (on {directory.writable_dc()})",
                target=f"playbook {self.name}",
                hint="check the OU's distinguishedName (ADUC > View > Advanced Features > the "
                "OU's Attribute Editor), then plan again",
            )
        where = f"in {params.ou}" if params.ou else "in the domain"
        found = directory.find_users(
            UserQuery(
                base_dn=params.ou,
                created_after=window.after,
                created_before=window.before,
                sam_account_names=params.users,
            )
        )
        older = directory.find_users(
            UserQuery(
                base_dn=params.ou,
                created_before=window.after,
                sam_account_names=params.users,
                mail_enabled_only=params.users is None,
            )
        )
        named = found + older
        if params.users is not None:
            named += directory.find_users(
                UserQuery(
                    base_dn=params.ou, created_after=window.before, sam_account_names=params.users
                )
            )
            _require_every_name(params.users, named, where, self.name)
        picked: list[tuple[DirectoryEntry, str, bool]] = []
        findings: list[Finding] = []
        seen: set[UUID] = set()
        for entry in sorted(named, key=lambda e: e.dn.lower()):
            if entry.guid in seen:
                continue
            seen.add(entry.guid)
            kept = never_selected(entry)
            made = mailbox_made_in(entry, window)
            created = iso(entry.when_created)
            in_scope = (
                params.users is not None or made is not None or window.holds(entry.when_created)
            )
            if not in_scope:
                continue  # an older account of the OU the run did not touch
            if kept is not None:
                findings.append(
                    Finding(
                        "kept-existing-account", entry.dn, f"created {created}; not deleted: {kept}"
                    )
                )
            elif window.holds(entry.when_created):
                how = "named in users=" if params.users is not None else f"below {params.ou}"
                picked.append((entry, f"created {created}, inside the window; {how}", False))
            elif made is not None and params.mailbox_only:
                picked.append(
                    (
                        entry,
                        f"created {created}, before the window; its mailbox was "
                        f"created {iso(made)}, inside it: the account stays, the "
                        "mailbox goes (mailbox_only)",
                        True,
                    )
                )
            elif made is not None:
                findings.append(
                    Finding(
                        "matched-account",
                        entry.dn,
                        f"created {created}, before the window, but its mailbox was created "
                        f"{iso(made)}, inside it: an existing account the wizard matched, not "
                        "deleted. To remove only the mailbox the cancelled run created, plan "
                        "again with -p mailbox_only=true",
                    )
                )
            elif params.users is not None:
                findings.append(
                    Finding(
                        "outside-window",
                        entry.dn,
                        f"named in users= but created {created}, outside the window {window}: "
                        "not created by the cancelled run, not deleted",
                    )
                )
        return picked, findings

    def steps(self, selection: Selection) -> list[Step[Any, Any]]:
        boxes = [
            MailboxTarget(user.server, user.store_dn or "", user.mailbox, user.sam)
            for user in selection.with_mailbox
            if user.server and user.mailbox
        ]
        stores: dict[tuple[str, str], list[SelectedUser]] = {}
        for user in selection.with_mailbox:
            stores.setdefault((user.server or "", user.store_dn or ""), []).append(user)
        expected = [
            Expectation(guid, deleted=True)
            for user in selection.deleted
            for guid in (user.guid, *user.children)
        ] + [
            Expectation(user.guid, attributes=(("msExchMailboxGuid", None), ("homeMDB", None)))
            for user in selection.kept
        ]
        strip: list[Step[Any, Any]] = (
            []
            if not selection.kept
            else [
                RemoveExchangeAttributes(
                    [
                        StripTarget(
                            user.target, user.server or "", _version(selection, user.server)
                        )
                        for user in selection.kept
                    ]
                )
            ]
        )
        return [
            ExportMail(boxes),
            DeleteAdUser([user.target for user in selection.deleted]),
            *strip,
            WaitForReplication(replication_targets(selection.dcs, expected, selection.readers)),
            RunCleanupAgent(
                [
                    StoreTarget(
                        server,
                        store_dn,
                        users[0].store_name or store_dn,
                        tuple(u.mailbox for u in users if u.mailbox),
                    )
                    for (server, store_dn), users in stores.items()
                ]
            ),
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


_SCOPE_EXAMPLE = (
    "-p ou=OU=Migrated,DC=corp,DC=example -p created_after=2026-11-01T10:00:00Z "
    "-p created_before=2026-11-01T12:00:00Z"
)


def _version(selection: Selection, server: str | None) -> ExchangeVersion:
    """The Exchange version that strips a kept account's mailbox link (its server's; LDAP as
    on 2003 when the mailbox was never created on any server)."""
    found = next((s.version for s in selection.servers if s.name == server), None)
    return found or ExchangeVersion.E2003


def _require_every_name(
    users: frozenset[str], found: Sequence[DirectoryEntry], where: str, playbook: str
) -> None:
    present = {entry.sam_account_name.lower() for entry in found}
    missing = sorted((name for name in users if name.lower() not in present), key=str.lower)
    if missing:
        raise InputError(
            f"users= names no user {where}: {', '.join(missing)}",
            target=f"playbook {playbook}",
            hint="check the sAMAccountNames (a user this run already deleted is gone too: "
            "leave it out), then plan again",
        )


def read_account_list(path: Path) -> tuple[str, ...]:
    """The wizard's account list: one sAMAccountName or DN a line; blank lines and lines
    starting with # are skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise InputError(
            f"cannot read the account list: {reason}",
            target=str(path),
            hint="give a text file, one sAMAccountName or DN a line",
        ) from None
    names = [line.strip() for line in text.splitlines()]
    return tuple(name for name in names if name and not name.startswith("#"))


def _list_differences(listed: Sequence[str], users: Sequence[SelectedUser]) -> list[Finding]:
    """Where the wizard's own list and the scope disagree: both are worth a look before
    anything is deleted."""
    chosen = [(user.sam, user.dn) for user in users]
    findings = [
        Finding(
            "listed-not-selected",
            name,
            "in the wizard's account list but not selected "
            "(not found in the scope, outside the window, or kept: see the other findings)",
        )
        for name in unlisted(listed, chosen)
    ]
    keys = {account_key(name) for name in listed}
    findings += [
        Finding(
            "selected-not-listed",
            user.dn,
            "selected by the scope but not in the wizard's "
            "account list: check it was created by the cancelled run",
        )
        for user in users
        if not keys & {account_key(user.sam), account_key(user.dn)}
    ]
    return findings
