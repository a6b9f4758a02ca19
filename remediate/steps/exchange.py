"""Exchange store steps: run the cleanup agent, purge and reconnect mailboxes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from remediate.engine.changes import (
    Change,
    ChangeRecord,
    Impact,
    JsonValue,
    NoOp,
    Planned,
    WouldFail,
)
from remediate.engine.step import Step, StepContext
from remediate.engine.wording import HOUR, Duration, Wording, endpoints_text
from remediate.model import (
    ConnectAs,
    DirectoryEntry,
    ExchangeVersion,
    MailboxInfo,
    MailboxKind,
    WriteValue,
    mailbox_key,
)
from remediate.recipient import home_mta, server_legacy_dn
from remediate.steps.coverage import export_gap, where_exports_are
from remediate.steps.recipient import STRIP_RECORD
from remediate.steps.targets import (
    RECONNECT_BY_HAND,
    MailboxTarget,
    ReconnectTarget,
    StoreTarget,
)

# The stores of Exchange 2000/2003 run the cleanup agent nightly by themselves: a manual run
# that nobody does is done within a day (the engine's manual deadline is the same 25 h).
MANUAL_WAIT_S = 25 * HOUR


def mailboxes_by_guid(
    ctx: StepContext, server: str, guids: Sequence[UUID]
) -> dict[UUID, MailboxInfo]:
    """The mailboxes themselves (``MailboxInfo.live``) with these GUIDs on ``server``: a recovery
    or soft-deleted copy with the same GUID is never what a step acts on."""
    return {box.guid: box for box in ctx.world.exchange.mailboxes(server, guids) if box.live}


def moved(store_dn: str, box: MailboxInfo) -> str | None:
    """Why ``box`` is not the mailbox a target saw in ``store_dn`` ("": any store): it is in
    another store now (moved since the plan), so acting on it by GUID could be wrong."""
    if not store_dn or mailbox_key(store_dn, box.guid) == box.key:
        return None
    return (
        f"mailbox {box.guid} is in the store {box.store_dn} now, not in {store_dn} where "
        "the plan saw it; plan again"
    )


def stores_of(targets: Sequence[tuple[UUID, str]]) -> dict[UUID, str]:
    """The store each mailbox was seen in, for the port's ``stores`` (targets without one:
    wherever the mailbox itself is)."""
    return {guid: store_dn for guid, store_dn in targets if store_dn}


class RunCleanupAgent(Step[StoreTarget, dict[UUID, MailboxInfo]]):
    """Make the store notice that these mailboxes lost their user: they become disconnected.
    Exchange 2000/2003 have no API for it: the operator is told exactly what to click, and the
    run waits (the stores also run it nightly by themselves)."""

    name = "run-cleanup-agent"
    impact = Impact.REVERSIBLE
    summary = "Run the cleanup agent on each store so the mailboxes show as disconnected"
    wording = Wording("run the cleanup agent on", "store", "stores")

    @classmethod
    def rollback(cls, records: Sequence[ChangeRecord]) -> tuple[str, ...]:
        return (
            "The cleanup agent only marks mailboxes whose user no longer points at them "
            f"as disconnected; reconnecting a mailbox undoes that ({RECONNECT_BY_HAND}).",
        )

    @classmethod
    def expected_duration(
        cls, records: Sequence[ChangeRecord], rehearsed_s: float, *, manual: bool = False
    ) -> Duration:
        if not manual:  # Clean-MailboxDatabase / Update-StoreMailboxState: at once
            return Duration(rehearsed_s)
        return Duration(
            rehearsed_s,
            MANUAL_WAIT_S,
            (
                "a manual action (Exchange 2000/2003): minutes if an operator runs the cleanup "
                "agent in Exchange System Manager as asked; if nobody does, the store's nightly "
                f"maintenance does it, up to {MANUAL_WAIT_S / HOUR:.0f} h"
            ),
        )

    deadline_s = 900.0
    poll_s = 10.0
    poll_max_s = 900.0  # a manual run waits up to a day: every 15 minutes at most

    def observe(
        self, ctx: StepContext, targets: Sequence[StoreTarget]
    ) -> Mapping[str, dict[UUID, MailboxInfo]]:
        server = targets[0].server
        wanted = [guid for target in targets for guid in target.mailboxes]
        found = mailboxes_by_guid(ctx, server, wanted)
        return {
            target.key: {g: found[g] for g in target.mailboxes if g in found} for target in targets
        }

    def plan(self, target: StoreTarget, observation: dict[UUID, MailboxInfo]) -> Change:
        if target.reassociate:
            return self._plan_reassociate(target, observation)
        still_owned = [box for box in observation.values() if box.owner is not None]
        if still_owned:
            return WouldFail(
                target.key,
                f"mailbox {still_owned[0].guid} still belongs to a user as the directory "
                f"servers {target.server} reads through (its DC or global catalog) see it",
            )
        connected = sum(1 for box in observation.values() if not box.disconnected)
        if not connected:
            return NoOp(target.key, "every mailbox is already disconnected")
        return Planned(
            target.key,
            "run-cleanup-agent",
            before={"connected": connected},
            after={"connected": 0},
        )

    @staticmethod
    def _plan_reassociate(target: StoreTarget, observation: dict[UUID, MailboxInfo]) -> Change:
        """After an Exchange 2000 re-home in AD the store still marks the mailbox disconnected
        until its cleanup agent runs again."""
        orphans = [box for box in observation.values() if box.owner is None]
        if orphans:
            return WouldFail(target.key, f"mailbox {orphans[0].guid} is not linked to a user")
        marked = sum(1 for box in observation.values() if box.disconnected)
        if not marked:
            return NoOp(target.key, "every mailbox is connected")
        return Planned(
            target.key,
            "run-cleanup-agent",
            before={"marked_disconnected": marked},
            after={"marked_disconnected": 0},
        )

    def apply(self, ctx: StepContext, pending: Sequence[tuple[StoreTarget, Planned]]) -> None:
        server = pending[0][0].server
        ctx.world.exchange.run_cleanup_agent(server, [target.store_dn for target, _ in pending])


@dataclass(frozen=True, slots=True)
class PurgeObservation:
    mailbox: MailboxInfo | None
    export_gap: str | None  # why no export made by this run holds all of it (None: one does)
    export_location: str = ""  # where its export is (Exchange.export_location)


class PurgeMailbox(Step[MailboxTarget, PurgeObservation]):
    """Delete disconnected mailboxes for good (Exchange Tasks > Delete Mailbox / Purge())."""

    name = "purge-mailbox"
    impact = Impact.DESTRUCTIVE
    summary = "Purge the disconnected mailboxes (an export of any mail exists first)"
    wording = Wording("purge", "mailbox", "mailboxes")

    @classmethod
    def risk(cls, records: Sequence[ChangeRecord]) -> str | None:
        return (
            f"**Destructive.** {len(records)} disconnected mailbox(es) are purged from the "
            f"store on {endpoints_text(records)}: they can no longer be reconnected. Their "
            "content survives only in this run's exports (every mailbox that held items is "
            "exported first; a purge without a complete export is refused) and in your "
            "Exchange backups."
        )

    @classmethod
    def rollback(cls, records: Sequence[ChangeRecord]) -> tuple[str, ...]:
        return (
            "The exports of the purged mailboxes that held mail are in:",
            *where_exports_are((record.before for record in records), "export"),
            "To restore a purged mailbox: mail-enable the user again (Exchange 2000/2003: "
            "Exchange Tasks > Create Mailbox; 2007 and later: `Enable-Mailbox`), then "
            "import the export: ExMerge (Exchange 2000/2003, *Import data into an "
            "Exchange mailbox*), `Import-Mailbox -PSTFolderPath` (2007) or "
            "`New-MailboxImportRequest -Mailbox <user> -FilePath \\\\server\\share\\"
            "<file>.pst` (2010 SP1 and later).",
        )

    def observe(
        self, ctx: StepContext, targets: Sequence[MailboxTarget]
    ) -> Mapping[str, PurgeObservation]:
        server = targets[0].server
        found = mailboxes_by_guid(ctx, server, [target.guid for target in targets])
        with_items = [guid for guid, box in found.items() if box.item_count]
        exports = ctx.world.exchange.exports(server, with_items) if with_items else {}
        location = ctx.world.exchange.export_location(server) if with_items else ""
        result: dict[str, PurgeObservation] = {}
        for target in targets:
            box = found.get(target.guid)
            gap = None if box is None else export_gap(box, exports.get(target.guid))
            result[target.key] = PurgeObservation(box, gap, location)
        return result

    def plan(self, target: MailboxTarget, observation: PurgeObservation) -> Change:
        box = observation.mailbox
        if box is None:
            return NoOp(target.key, "already purged")
        if (elsewhere := moved(target.store_dn, box)) is not None:
            return WouldFail(target.key, elsewhere)
        if observation.export_gap is not None:
            return WouldFail(
                target.key,
                f"mailbox {box.display_name} ({box.guid}) on {target.server}: "
                f"{observation.export_gap}; export it again before it is purged (while it "
                "is connected, as the export-mail step does; once disconnected, reconnect it "
                "or, on Exchange 2010 SP1+, New-MailboxRestoreRequest it into another mailbox, "
                "and export that)",
            )
        if not box.disconnected:
            return WouldFail(target.key, "still connected; run the cleanup agent first")
        before: dict[str, JsonValue] = {"state": "disconnected", "items": box.item_count}
        if box.item_count:
            before["export"] = observation.export_location
        return Planned(
            target.key,
            "purge",
            before=before,
            after="purged",
            deletes=1,
        )

    def apply(self, ctx: StepContext, pending: Sequence[tuple[MailboxTarget, Planned]]) -> None:
        server = pending[0][0].server
        ctx.world.exchange.purge_mailboxes(
            server,
            [target.guid for target, _ in pending],
            stores_of([(target.guid, target.store_dn) for target, _ in pending]),
        )


@dataclass(frozen=True, slots=True)
class ReconnectObservation:
    mailbox: MailboxInfo | None
    user: DirectoryEntry | None  # on the pinned DC
    recorded: DirectoryEntry | None = None  # the user before the strip (its backup)


class ReconnectMailbox(Step[ReconnectTarget, ReconnectObservation]):
    """Connect the original mailbox to its user: Reconnect() on 2003, Connect-Mailbox on 2007+,
    and on Exchange 2000 (no API) by re-homing the user in AD as MBConn does; there the user
    pointing at the mailbox (as the server's DC sees it) is the connection, and the store's
    stale disconnected mark is cleared by a later cleanup-agent run."""

    name = "reconnect-mailbox"
    impact = Impact.REVERSIBLE
    summary = "Reconnect each original mailbox to its user"
    wording = Wording("reconnect", "mailbox", "mailboxes")

    @classmethod
    def risk(cls, records: Sequence[ChangeRecord]) -> str | None:
        return (
            f"{len(records)} original mailbox(es) on {endpoints_text(records)} are reconnected "
            "to their users: they see their old mail again; Outlook may need to be restarted "
            "(or the profile recreated) to open it."
        )

    @classmethod
    def rollback(cls, records: Sequence[ChangeRecord]) -> tuple[str, ...]:
        return (
            "To undo a reconnect: disconnect the mailbox again (Exchange Tasks > Delete "
            "Mailbox on 2000/2003, `Disable-Mailbox` on 2007 and later), let the cleanup "
            f"agent mark it disconnected, then reconnect the other one ({RECONNECT_BY_HAND}).",
        )

    deadline_s = 4 * 3600.0
    poll_s = 10.0
    poll_max_s = 300.0

    def observe(
        self, ctx: StepContext, targets: Sequence[ReconnectTarget]
    ) -> Mapping[str, ReconnectObservation]:
        server = targets[0].server
        found = mailboxes_by_guid(ctx, server, [target.mailbox for target in targets])
        directory = ctx.world.directory
        guids = [target.user for target in targets]
        users = directory.read(guids, directory.writable_dc())
        recorded = ctx.backups.recorded(STRIP_RECORD, guids)
        return {
            t.key: ReconnectObservation(
                found.get(t.mailbox), users.get(t.user), recorded.get(t.user)
            )
            for t in targets
        }

    def plan(self, target: ReconnectTarget, observation: ReconnectObservation) -> Change:
        box, user = observation.mailbox, observation.user
        if box is None:
            return WouldFail(target.key, f"mailbox {target.mailbox} is not on {target.server}")
        if (elsewhere := moved(target.store_dn, box)) is not None:
            return WouldFail(target.key, elsewhere)
        if user is None:
            return WouldFail(target.key, f"user {target.user_dn} no longer exists")
        if box.owner == target.user and (not box.disconnected or target.rehomed_in_ad):
            return NoOp(target.key, "already connected to its user")
        if box.owner not in (None, target.user):
            return WouldFail(target.key, f"the mailbox now belongs to another user {box.owner}")
        return Planned(
            target.key,
            "reconnect",
            before={"mailbox": "disconnected", "user_mailbox": user.get("msExchMailboxGuid")},
            after={"mailbox": "connected", "user_mailbox": str(target.mailbox)},
        )

    def apply(self, ctx: StepContext, pending: Sequence[tuple[ReconnectTarget, Planned]]) -> None:
        observed = self.observe(ctx, [target for target, _ in pending])
        first = pending[0][0]
        if not first.rehomed_in_ad:
            ctx.world.exchange.reconnect_mailboxes(
                first.server,
                [(target.mailbox, target.user) for target, _ in pending],
                {
                    target.user: connect_as(observed[target.key].recorded, target.version)
                    for target, _ in pending
                },
                stores_of([(target.mailbox, target.store_dn) for target, _ in pending]),
            )
            return
        for target, _ in pending:
            observation = observed[target.key]
            user, box = observation.user, observation.mailbox
            if user is not None and box is not None and user.mailbox_guid != target.mailbox:
                ctx.world.directory.modify(
                    target.user, rehome_attributes(target, box, user, observation.recorded)
                )


def connect_as(recorded: DirectoryEntry | None, version: str) -> ConnectAs:
    """Connect-Mailbox's parameter set for the mailbox the user had (2007+), and -Archive
    where he had an archive (2010+, User set only). A linked mailbox is connected as a user
    mailbox: its Linked set needs the account forest's DC (-LinkedDomainController), which AD
    does not record; restore-recipient puts its master account back."""
    if recorded is None:
        return ConnectAs()
    kind = MailboxKind.of(recorded.get("msExchRecipientTypeDetails"))
    if kind is MailboxKind.LINKED:
        kind = MailboxKind.USER
    archive = (
        kind is MailboxKind.USER
        and version != ExchangeVersion.E2007
        and bool(recorded.get("msExchArchiveGUID"))
    )
    return ConnectAs(kind, archive)


def rehome_attributes(
    target: ReconnectTarget,
    box: MailboxInfo,
    user: DirectoryEntry,
    recorded: DirectoryEntry | None = None,
) -> dict[str, WriteValue | None]:
    """What MBConn writes on Exchange 2000: point the user at the mailbox, its store, its
    server and that server's MTA, under the alias he had before the strip (the strip cleared
    mailNickname: the account name instead would change a policy-made address)."""
    before = recorded if recorded is not None else user
    changes: dict[str, WriteValue | None] = {
        "msExchMailboxGuid": str(target.mailbox),
        "homeMDB": target.store_dn,
        "legacyExchangeDN": box.legacy_dn,
        "mailNickname": before.get("mailNickname") or user.sam_account_name,
        "msExchHomeServerName": server_legacy_dn(
            target.store_dn, before.get("msExchHomeServerName") or target.home_server
        )
        or target.home_server,
    }
    mta = home_mta(target.store_dn)
    if mta is not None:
        changes["homeMTA"] = mta
    return changes
