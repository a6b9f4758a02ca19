"""Active Directory steps: delete users (Tree Delete where needed), strip Exchange attributes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from uuid import UUID

from remediate.engine.changes import Change, ChangeRecord, Impact, NoOp, Planned, WouldFail
from remediate.engine.step import Step, StepContext
from remediate.engine.wording import Wording
from remediate.model import (
    DISABLE_MAILBOX_ATTRIBUTES,
    EXCHANGE_ATTRIBUTES,
    DirectoryEntry,
    ExchangeVersion,
)
from remediate.steps.recipient import shown, values_of
from remediate.steps.targets import RECONNECT_BY_HAND, UserKeyedTarget, UserTarget


@dataclass(frozen=True, slots=True)
class UserObservation:
    """The user on the pinned DC (None: gone), the objects below it, whether we may delete."""

    entry: DirectoryEntry | None
    descendants: tuple[DirectoryEntry, ...]
    allow_protected: bool
    # Other users of the forest with the same sAMAccountName (read where it matters: a mailbox
    # Exchange 2003 will reconnect by that name).
    namesakes: tuple[str, ...] = ()  # their DNs
    # What the server holding the mailbox to reconnect says would stop it (Exchange 2007+:
    # Connect-Mailbox -ValidateOnly); None: nothing, or not asked.
    reconnect_problem: str | None = None


def observe_users(ctx: StepContext, targets: Sequence[UserTarget]) -> Mapping[str, UserObservation]:
    directory = ctx.world.directory
    dc = directory.writable_dc()
    guids = [target.guid for target in targets]
    entries = directory.read(guids, dc)
    present = [guid for guid in guids if guid in entries]
    below = directory.descendants(present, dc) if present else {}
    return {
        target.key: UserObservation(
            entries.get(target.guid),
            tuple(below.get(target.guid, ())),
            ctx.options.allow_protected,
        )
        for target in targets
    }


class DeleteAdUser(Step[UserTarget, UserObservation]):
    """Delete each selected user; Tree Delete when it has child objects. LDIF backup first."""

    name = "delete-ad-user"
    impact = Impact.DESTRUCTIVE
    summary = "Delete the user objects (Tree Delete where they have children), after an LDIF backup"
    wording = Wording("delete", "user", "users")

    @classmethod
    def risk(cls, records: Sequence[ChangeRecord]) -> str | None:
        children = sum(r.deletes - 1 for r in records if r.deletes > 1)
        below = f" and {children} object(s) below them (Tree Delete)" if children else ""
        return (
            f"**Destructive.** {len(records)} user object(s){below} are deleted from Active "
            "Directory. They become tombstones: no logon, no address-book entry, no mail "
            "delivery to them. Tombstone reanimation brings an object back only until the "
            "tombstone lifetime (60 or 180 days, forest setting) runs out; group memberships "
            "and most other attributes are stripped from a tombstone and come back only from "
            "the LDIF backup (or the AD Recycle Bin, where enabled)."
        )

    @classmethod
    def rollback(cls, records: Sequence[ChangeRecord]) -> tuple[str, ...]:
        return (
            "Each deleted object and everything below it was written, before the delete, "
            "to `backups/ad/delete-ad-user-*.ldif` in the run directory.",
            "Reanimate the tombstone (parents before children): with the AD Recycle Bin "
            '(Windows Server 2008 R2 and later) `Get-ADObject -Filter "objectGUID -eq '
            "'<guid>'\" -IncludeDeletedObjects | Restore-ADObject`; otherwise an LDAP "
            "modify on `<GUID=<guid>>` with the Show Deleted control "
            "(1.2.840.113556.1.4.417) that deletes `isDeleted` and replaces "
            "`distinguishedName` with the original DN from the LDIF (ldp.exe: Options > "
            "Controls > Return deleted objects, then Modify; or `adrestore -r`).",
            "Then put back what the tombstone lost, with the LDIF as the attribute "
            "source: turn its records into `changetype: modify` / `replace:` records "
            "and import them with `ldifde -i -f restore.ldif -s <DC>`; re-add group "
            "memberships; reset the password and enable the account.",
            "Where no tombstone is left, re-create the objects from the LDIF as it is: "
            "`ldifde -i -k -f backups/ad/delete-ad-user-<...>.ldif -s <DC>` adds them "
            "parents first with every attribute they held (binary values base64, GUIDs "
            "as their 16 bytes); the `#` lines (objectGUID, objectSid, whenCreated and "
            "the other attributes AD owns) are not imported, so the objects get a new "
            "objectGUID and SID: re-grant permissions given to the old SID.",
            "A reanimated user whose mailbox was not purged yet gets it back by "
            f"reconnecting it ({RECONNECT_BY_HAND}); one whose mailbox was purged gets a new "
            "mailbox and the export imported into it.",
        )

    def observe(
        self, ctx: StepContext, targets: Sequence[UserTarget]
    ) -> Mapping[str, UserObservation]:
        return observe_users(ctx, targets)

    def plan(self, target: UserTarget, observation: UserObservation) -> Change:
        entry = observation.entry
        if entry is None:
            return NoOp(target.key, "already deleted")
        protected = [e.dn for e in (entry, *observation.descendants) if e.protected]
        if protected and not observation.allow_protected:
            return WouldFail(
                target.key,
                f"protected from accidental deletion: {protected[0]} "
                "(clear the protection, or pass --allow-protected if this is intended)",
            )
        children = len(observation.descendants)
        return Planned(
            target.key,
            "tree-delete" if children else "delete",
            before={"children": children},
            after="deleted",
            deletes=1 + children,
            observed=observation,
        )

    def apply(self, ctx: StepContext, pending: Sequence[tuple[UserTarget, Planned]]) -> None:
        observed = {target.key: _user_observation(change) for target, change in pending}
        entries: list[DirectoryEntry] = []
        for target, _ in pending:
            observation = observed[target.key]
            if observation.entry is not None:
                entries.extend((observation.entry, *observation.descendants))
        ctx.backups.save_directory_entries(self.id, entries)
        for target, change in pending:
            observation = observed[target.key]
            if observation.entry is None:
                continue
            if observation.allow_protected:
                for protected in (observation.entry, *observation.descendants):
                    if protected.protected:
                        ctx.world.directory.unprotect(protected.guid)
            ctx.world.directory.delete(target.guid, tree=change.action == "tree-delete")


def _user_observation(change: Planned) -> UserObservation:
    if not isinstance(change.observed, UserObservation):
        raise TypeError(f"{change.target}: planned without its observation")
    return change.observed


@dataclass(frozen=True, slots=True)
class StripTarget(UserKeyedTarget):
    """A user to strip of Exchange attributes; ``version``/``server`` pick the method."""

    # The mailbox goes back by sAMAccountName (Exchange 2003 Exchange_Mailbox.Reconnect), so
    # the name must be the user's alone in the forest before the user is stripped.
    reconnect_by_name: bool = False
    # The mailbox to connect to the user afterwards, (server, mailbox GUID): on 2007+ the server
    # is asked first whether it can be (Connect-Mailbox -ValidateOnly).
    reconnects: tuple[str, UUID] | None = None
    reconnects_store: str = ""  # the store that mailbox is in (a GUID is not unique on a server)

    @property
    def endpoint(self) -> str:
        # 2000/2003: LDAP on the pinned DC (ADUC's Exchange Tasks); 2007+: Disable-Mailbox.
        return self.user.endpoint if self.version.legacy else f"exchange:{self.server}"


def exchange_attributes(entry: DirectoryEntry) -> dict[str, str]:
    present: dict[str, str] = {}
    for name in EXCHANGE_ATTRIBUTES:
        value = entry.get(name)
        if value:
            present[name] = value
    return present


def cleared_attributes(version: ExchangeVersion) -> tuple[str, ...]:
    """What the strip clears: on 2000/2003 the LDAP strip clears the mailbox link and the
    addresses (EXCHANGE_ATTRIBUTES); on 2007+ Disable-Mailbox clears the recipient settings,
    type and archive link too."""
    return EXCHANGE_ATTRIBUTES if version.legacy else DISABLE_MAILBOX_ATTRIBUTES


class RemoveExchangeAttributes(Step[StripTarget, UserObservation]):
    """Exchange Tasks > Delete Mailbox: the user keeps its account, loses its mailbox link."""

    name = "remove-exchange-attributes"
    impact = Impact.DISRUPTIVE
    summary = "Remove the users' Exchange attributes (Exchange Tasks > Delete Mailbox)"
    wording = Wording("remove the Exchange attributes of", "user", "users")

    @classmethod
    def risk(cls, records: Sequence[ChangeRecord]) -> str | None:
        return (
            f"**Disruptive.** {len(records)} user(s) lose their Exchange attributes (Exchange "
            "Tasks > Delete Mailbox; `Disable-Mailbox` on 2007 and later, which also clears "
            "forwarding, delegates, sender restrictions, quotas, hidden-from-address-lists, "
            "extension attributes, the mailbox type and the archive link): every attribute "
            "cleared is listed, with its value, in this step's changes. From here until "
            "reconnect-mailbox they have no mailbox: Outlook and OWA cannot open it, mail to "
            "them is queued or bounced. From reconnect-mailbox until restore-recipient they "
            "have only the addresses the recipient policy gives (the primary SMTP address "
            "made from the alias, and X.400 on 2000/2003): mail to a secondary address, to "
            "an X500 (replies to mail sent before the change, Outlook's nickname cache) or "
            "to an X.400 address bounces, they may show in address lists they were hidden "
            "from, forwarding is off and delegates cannot send on their behalf. Plan the "
            "change window for it; transport stays stopped until restore-recipient is done."
        )

    @classmethod
    def rollback(cls, records: Sequence[ChangeRecord]) -> tuple[str, ...]:
        return (
            "Before the change, each user's cleared attributes were written as "
            "`changetype: modify` records (a `replace:` of every attribute the step "
            "clears, with its values; binary values base64, GUIDs as their 16 bytes) to "
            "`backups/ad/remove-exchange-attributes-*.ldif` in the run directory; "
            "restore-recipient works from this same file.",
            "To put the attributes back by hand (before reconnect-mailbox ran: the user "
            "is then on the blank mailbox again): `ldifde -i -f "
            "remove-exchange-attributes-<...>.ldif -s <DC>` (the lines starting with `#` "
            "are what AD owns, objectGUID and the like, and are not imported). After "
            "reconnect-mailbox ran, leave out the `replace:` blocks of msExchMailboxGuid, "
            "homeMDB and legacyExchangeDN, or the user points at the blank mailbox again.",
        )

    # Disable-Mailbox writes through the Exchange server's DC; the pinned DC sees it later.
    deadline_s = 3600.0

    def observe(
        self, ctx: StepContext, targets: Sequence[StripTarget]
    ) -> Mapping[str, UserObservation]:
        found = dict(observe_users(ctx, [target.user for target in targets]))
        names = {
            target.key: entry.sam_account_name
            for target in targets
            if target.reconnect_by_name and (entry := found[target.key].entry) is not None
        }
        if names:
            namesakes = ctx.world.directory.forest_namesakes(sorted(set(names.values())))
            for target in targets:
                if target.key in names:
                    others = tuple(
                        dn
                        for guid, dn in namesakes.get(names[target.key], ())
                        if guid != target.user.guid
                    )
                    found[target.key] = replace(found[target.key], namesakes=others)
        by_server: dict[str, list[StripTarget]] = {}
        for target in targets:
            if target.reconnects is not None and found[target.key].entry is not None:
                by_server.setdefault(target.reconnects[0], []).append(target)
        for server, asking in by_server.items():
            problems = ctx.world.exchange.reconnect_problems(
                server,
                [target.reconnects[1] for target in asking if target.reconnects],
                {
                    target.reconnects[1]: target.reconnects_store
                    for target in asking
                    if target.reconnects and target.reconnects_store
                },
            )
            for target in asking:
                problem = problems.get(target.reconnects[1]) if target.reconnects else None
                if problem:
                    found[target.key] = replace(found[target.key], reconnect_problem=problem)
        return found

    def plan(self, target: StripTarget, observation: UserObservation) -> Change:
        if observation.entry is None:
            return WouldFail(target.key, "the user no longer exists")
        entry = observation.entry
        if not exchange_attributes(entry):
            return NoOp(target.key, "no Exchange attributes")
        if observation.reconnect_problem and target.reconnects:
            server, mailbox = target.reconnects
            return WouldFail(
                target.key,
                f"{server} says mailbox {mailbox} could not be connected to "
                f"{entry.dn} (Connect-Mailbox -ValidateOnly): "
                f"{observation.reconnect_problem.rstrip('.')}. Nothing was changed; fix that, then "
                "plan again",
            )
        if observation.namesakes:
            others = "; ".join(observation.namesakes)
            return WouldFail(
                target.key,
                f"{entry.dn} and {others} share the sAMAccountName "
                f"{entry.sam_account_name!r} in the forest, and Exchange 2003 "
                "reconnects a mailbox to the first user with that name in the forest "
                "(Exchange_Mailbox.Reconnect): it could reach the wrong user. Nothing was "
                "changed; rename one of them (unique in the forest), then plan again",
            )
        cleared = [name for name in cleared_attributes(target.version) if entry.holds(name)]
        return Planned(
            target.key,
            "remove-exchange-attributes",
            before={name: shown(values_of(entry, name)) for name in cleared},
            after=dict.fromkeys(cleared),
            observed=observation,
        )

    def apply(self, ctx: StepContext, pending: Sequence[tuple[StripTarget, Planned]]) -> None:
        entries = [_user_observation(change).entry for _, change in pending]
        first = pending[0][0]
        # The record restore-recipient works from, and what `ldifde -i` puts back by hand.
        ctx.backups.save_cleared_attributes(
            self.id, [e for e in entries if e is not None], cleared_attributes(first.version)
        )
        if first.version.legacy:
            for target, _ in pending:
                ctx.world.directory.modify(target.user.guid, dict.fromkeys(EXCHANGE_ATTRIBUTES))
        else:
            ctx.world.exchange.disable_mailboxes(
                first.server, [target.user.guid for target, _ in pending]
            )
