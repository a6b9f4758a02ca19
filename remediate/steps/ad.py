"""Active Directory steps: delete users (Tree Delete where needed), strip Exchange attributes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from remediate.engine.changes import Change, Impact, NoOp, Planned, WouldFail
from remediate.engine.step import Step, StepContext
from remediate.model import (
    DISABLE_MAILBOX_ATTRIBUTES,
    EXCHANGE_ATTRIBUTES,
    DirectoryEntry,
    ExchangeVersion,
)
from remediate.steps.recipient import shown, values_of
from remediate.steps.targets import UserTarget


@dataclass(frozen=True, slots=True)
class UserObservation:
    """The user on the pinned DC (None: gone), the objects below it, whether we may delete."""

    entry: DirectoryEntry | None
    descendants: tuple[DirectoryEntry, ...]
    allow_protected: bool


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
class StripTarget:
    """A user to strip of Exchange attributes; ``version``/``server`` pick the method."""

    user: UserTarget
    server: str
    version: ExchangeVersion

    @property
    def key(self) -> str:
        return self.user.key

    @property
    def label(self) -> str:
        return self.user.label

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
    # Disable-Mailbox writes through the Exchange server's DC; the pinned DC sees it later.
    deadline_s = 3600.0

    def observe(
        self, ctx: StepContext, targets: Sequence[StripTarget]
    ) -> Mapping[str, UserObservation]:
        return observe_users(ctx, [target.user for target in targets])

    def plan(self, target: StripTarget, observation: UserObservation) -> Change:
        if observation.entry is None:
            return WouldFail(target.key, "the user no longer exists")
        entry = observation.entry
        if not exchange_attributes(entry):
            return NoOp(target.key, "no Exchange attributes")
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
            self.id, [e for e in entries if e is not None], cleared_attributes(first.version))
        if first.version.legacy:
            for target, _ in pending:
                ctx.world.directory.modify(
                    target.user.guid, dict.fromkeys(EXCHANGE_ATTRIBUTES)
                )
        else:
            ctx.world.exchange.disable_mailboxes(
                first.server, [target.user.guid for target, _ in pending]
            )
