"""Give the user back what the strip removed and the recipient policy does not: have Exchange
apply its policy to the reconnected user, then restore the recorded recipient attributes (last,
so the policy cannot demote the user's own primary address or drop one the record holds), wait
until every DC shows them, and verify against what was recorded before the strip.

The record is the strip's own backup (``backups/ad/remove-exchange-attributes-*.ldif``, one
``changetype: modify`` record per user naming every attribute it cleared, held or not), read
back through :class:`~remediate.engine.backups.Backups`: a run resumed after a crash between
the strip and the restore still has it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from remediate.dn import normalize
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
from remediate.engine.wording import Wording, endpoints_text
from remediate.model import (
    DISABLE_MAILBOX_ATTRIBUTES,
    MAILBOX_TYPE_ATTRIBUTES,
    DirectoryEntry,
    ExchangeVersion,
    WriteValue,
)
from remediate.ports import ManualActionRequired
from remediate.recipient import home_mta, x500
from remediate.steps.replication import ReplicationTarget, WaitForReplication
from remediate.steps.targets import UserKeyedTarget, exchange_endpoint

# The strip's step id: its backups are the record of each user before the strip.
STRIP_RECORD = "remove-exchange-attributes"
# The mailbox link: the reconnect sets it to the original mailbox, never the restore.
_LINK = frozenset({"msexchmailboxguid", "homemdb", "legacyexchangedn"})
# Where the mailbox is served from: Connect-Mailbox sets these on 2007+ (never restored there);
# on 2000/2003 they follow homeMDB.
_HOME = frozenset({"homemta", "msexchhomeservername"})
# What Connect-Mailbox sets for the mailbox it connects (its type; the archive with -Archive):
# where the record holds no value, the restore leaves what it set.
_SET_BY_CONNECT = frozenset(name.lower() for name in MAILBOX_TYPE_ATTRIBUTES)
# Multi-valued attributes the restore writes back as lists (a single value included).
MULTI_VALUED = frozenset(
    {
        "proxyaddresses",
        "publicdelegates",
        "authorig",
        "unauthorig",
        "showinaddressbook",
        "msexchpoliciesexcluded",
        "msexchpoliciesincluded",
        "dlmemsubmitperms",
        "dlmemrejectperms",
    }
)
Values = tuple[str | bytes, ...]
Differences = dict[str, tuple[Values, Values]]  # name -> (now, wanted)


@dataclass(frozen=True, slots=True)
class RecipientTarget(UserKeyedTarget):
    """A repaired user, and the Exchange server its mailbox is on now. ``unrecorded``: why no
    record of him from before the strip can exist (his Exchange attributes were removed before
    this run, so its strip had nothing to back up); the restore then has nothing to put back
    and says so, where a missing record is otherwise a failure (a lost backup)."""

    unrecorded: str | None = None


@dataclass(frozen=True, slots=True)
class RecipientObservation:
    current: DirectoryEntry | None  # on the pinned DC
    recorded: DirectoryEntry | None  # from the strip's backup


def values_of(entry: DirectoryEntry, name: str) -> Values:
    """An attribute's values, text or binary, in a stable order (AD keeps none)."""
    binary = entry.get_binary(name)
    if binary:
        return tuple(sorted(binary))
    raw = next((v for k, v in entry.attributes.items() if k.lower() == name.lower()), None)
    texts = [] if raw is None else [raw] if isinstance(raw, str) else list(raw)
    return tuple(sorted(texts))


def _recorded_names(entry: DirectoryEntry) -> list[str]:
    return sorted({*entry.attributes, *entry.binary}, key=str.lower)


def wanted(
    current: DirectoryEntry, recorded: DirectoryEntry, version: ExchangeVersion
) -> dict[str, Values]:
    """Each recorded attribute as it must be now: as recorded, plus an X500 of the former
    legacyExchangeDN where the reconnect changed it, with homeMTA following homeMDB (2000/2003)
    and the mailbox link left to the reconnect."""
    result: dict[str, Values] = {}
    same_store = _same_dn(current.get("homeMDB"), recorded.get("homeMDB"))
    for name in _recorded_names(recorded):
        lowered = name.lower()
        if lowered in _LINK or (lowered in _HOME and not version.legacy):
            continue
        if lowered in _HOME and not (same_store and recorded.get(name)):
            # They follow homeMDB: where the store changed (or nothing was recorded), homeMTA is
            # the new store's server's MTA, msExchHomeServerName what the reconnect set.
            mta = home_mta(current.get("homeMDB") or "") if lowered == "homemta" else None
            if mta is not None:
                result[name] = (mta,)
            continue
        values = values_of(recorded, name)
        if values or lowered not in _SET_BY_CONNECT:
            result[name] = values
    former = recorded.get("legacyExchangeDN")
    now = current.get("legacyExchangeDN")
    if former and now and former.lower() != now.lower():
        addresses = result.get("proxyAddresses", ())
        if not any(str(a).lower() == x500(former).lower() for a in addresses):
            result["proxyAddresses"] = tuple(sorted((*addresses, x500(former))))
    return result


def differences(
    current: DirectoryEntry, recorded: DirectoryEntry, version: ExchangeVersion
) -> Differences:
    """Every attribute that is not as it must be: name -> (now, wanted)."""
    return {
        name: (values_of(current, name), values)
        for name, values in wanted(current, recorded, version).items()
        if values_of(current, name) != values
    }


def _same_dn(one: str | None, other: str | None) -> bool:
    if one is None or other is None:
        return one == other
    try:
        return normalize(one) == normalize(other)
    except ValueError:
        return one.lower() == other.lower()


def shown(values: Values) -> JsonValue:
    """Values for a plan: absent None, one value itself, several a list; bytes as base64."""
    texts: list[JsonValue] = [
        "base64:" + base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v
        for v in values
    ]
    if not texts:
        return None
    return texts[0] if len(texts) == 1 else texts


def _written(name: str, values: Values) -> WriteValue | None:
    if not values:
        return None
    if isinstance(values[0], bytes):
        return [v for v in values if isinstance(v, bytes)]
    texts = [str(v) for v in values]
    return texts if len(texts) > 1 or name.lower() in MULTI_VALUED else texts[0]


def observe_recipients(
    ctx: StepContext, targets: Sequence[RecipientTarget]
) -> dict[str, RecipientObservation]:
    directory = ctx.world.directory
    guids = [target.user.guid for target in targets]
    current = directory.read(guids, directory.writable_dc())
    recorded = ctx.backups.recorded(STRIP_RECORD, guids)
    return {
        target.key: RecipientObservation(
            current.get(target.user.guid), recorded.get(target.user.guid)
        )
        for target in targets
    }


def _without_record(
    target: RecipientTarget, observation: RecipientObservation, nothing: str
) -> Change | None:
    """What a restore or verification does for a user it cannot compare with a record: a user
    gone or a record lost fails; a user stripped before this run (no record was ever made) is
    left as the policy made him, ``nothing`` saying so, never given invented values."""
    if observation.current is None:
        return WouldFail(target.key, f"user {target.user.dn} no longer exists")
    if observation.recorded is not None:
        return None
    if target.unrecorded is not None:
        return NoOp(target.key, f"{nothing}: {target.unrecorded}")
    return WouldFail(
        target.key,
        f"this run holds no record of {target.user.dn} from before "
        f"the strip (backups/ad/{STRIP_RECORD}-*.ldif); put its addresses and "
        "settings back by hand from the backup of the run that stripped it",
    )


class AgainstTheRecord(Step[RecipientTarget, RecipientObservation]):
    """A step that compares each user with the record made before the strip: what it does
    where they differ is the subclass's :meth:`plan_differences`."""

    unrecorded_text = "nothing recorded to compare with"  # a user stripped before this run
    same_text = "as recorded"  # a user as the record says

    def observe(
        self, ctx: StepContext, targets: Sequence[RecipientTarget]
    ) -> Mapping[str, RecipientObservation]:
        return observe_recipients(ctx, targets)

    def plan(self, target: RecipientTarget, observation: RecipientObservation) -> Change:
        unrecorded = _without_record(target, observation, self.unrecorded_text)
        if unrecorded is not None:
            return unrecorded
        assert observation.current is not None and observation.recorded is not None
        differ = differences(observation.current, observation.recorded, target.version)
        if not differ:
            return NoOp(target.key, self.same_text)
        return self.plan_differences(target, differ)

    def plan_differences(self, target: RecipientTarget, differ: Differences) -> Change:
        raise NotImplementedError


class RestoreRecipient(AgainstTheRecord):
    """Put back, from the record made before the strip, what the strip removed and the
    recipient policy does not give back: alias, mail, every proxy address (the old primary
    still primary) and an X500 of the former legacyExchangeDN, routing (homeMTA), forwarding,
    delegates, sender restrictions, quotas, hidden-from-address-lists, extension attributes,
    mailbox rights, and a linked mailbox's master account."""

    name = "restore-recipient"
    impact = Impact.REVERSIBLE
    summary = (
        "Restore each user's addresses, alias and recipient settings as they were "
        "before the strip (plus an X500 of a changed legacyExchangeDN)"
    )
    wording = Wording("restore the addresses and settings of", "user", "users")

    @classmethod
    def risk(cls, records: Sequence[ChangeRecord]) -> str | None:
        return (
            f"{len(records)} user(s) get back, as they were before the strip, their alias, "
            "primary and secondary addresses (X500, X.400 included; an X500 of the former "
            "legacyExchangeDN is added where the reconnect changed it), forwarding, "
            "delegates, sender restrictions, quotas, hidden-from-address-lists, extension "
            "attributes and mailbox rights: each change lists what comes back. Address "
            "lists and the offline address book show them after their next update. A user "
            "whose Exchange attributes were removed before the run (a repair half done by "
            "hand) has no record from before the strip: nothing is restored for him, he keeps "
            "what the policy gives, and the findings name him (`recipient-not-restored`)."
        )

    @classmethod
    def rollback(cls, records: Sequence[ChangeRecord]) -> tuple[str, ...]:
        return (
            "Each user's values before this step are in this step's changes (`before`), "
            "and the strip's LDIF holds the values from before the strip. To undo: "
            "`Set-Mailbox`/ADSI Edit with the `before` values, or an `ldifde -i` of "
            "`replace:` records made from them.",
        )

    unrecorded_text = "nothing recorded to restore"
    same_text = "every recorded attribute is as it was"

    def plan_differences(self, target: RecipientTarget, differ: Differences) -> Change:
        return Planned(
            target.key,
            "restore-recipient",
            before={name: shown(now) for name, (now, _) in differ.items()},
            after={name: shown(values) for name, (_, values) in differ.items()},
            observed=differ,
        )

    def apply(self, ctx: StepContext, pending: Sequence[tuple[RecipientTarget, Planned]]) -> None:
        for target, change in pending:
            differ = change.observed
            if not isinstance(differ, dict):
                raise TypeError(f"{change.target}: planned without its observation")
            ctx.world.directory.modify(
                target.user.guid,
                {name: _written(name, values) for name, (_, values) in differ.items()},
            )


class WaitForRestore(WaitForReplication):
    """Until every DC (the Exchange servers' among them) shows each user as the pinned DC
    does: transport starts again only once Exchange resolves the restored addresses."""

    summary = "Wait until every domain controller shows each user's restored addresses and settings"

    # Everything a restore may write (not the whole object: lastLogon and its kind are never
    # replicated, so no two DCs ever agree on them).
    _WATCHED = (*DISABLE_MAILBOX_ATTRIBUTES, "homeMTA")
    # What a global catalog of another domain holds of them: the partial attribute set's
    # recipient attributes, what Exchange resolves addresses with (the rest never reach it).
    _IN_CATALOG = (
        "mail",
        "mailNickname",
        "proxyAddresses",
        "legacyExchangeDN",
        "homeMDB",
        "msExchMailboxGuid",
    )

    def visible(self, ctx: StepContext, targets: Sequence[ReplicationTarget]) -> dict[str, int]:
        directory = ctx.world.directory
        guids = list(dict.fromkeys(e.guid for target in targets for e in target.expectations))
        pinned = directory.read(guids, directory.writable_dc()) if targets else {}
        seen: dict[str, int] = {}
        for target in targets:
            wanted = [e.guid for e in target.expectations]
            entries = (
                directory.read_catalog(wanted, target.dc)
                if target.catalog
                else directory.read(wanted, target.dc)
            )
            names = self._IN_CATALOG if target.catalog else self._WATCHED
            seen[target.key] = sum(
                1
                for e in target.expectations
                if _shows(entries.get(e.guid), pinned.get(e.guid), names)
            )
        return seen


def _shows(
    entry: DirectoryEntry | None, pinned: DirectoryEntry | None, names: Sequence[str]
) -> bool:
    if pinned is None:
        return True  # nothing to wait for: the restore step reports a user that is gone
    return entry is not None and all(
        values_of(entry, name) == values_of(pinned, name) for name in names
    )


@dataclass(frozen=True, slots=True)
class PolicyTarget:
    """The users whose mailboxes one Exchange server holds: Exchange applies its recipient
    policy to them (Update-Recipient; the Recipient Update Service on 2000/2003)."""

    server: str
    version: ExchangeVersion
    users: tuple[UUID, ...]

    @property
    def key(self) -> str:
        return f"recipients:{self.server}"

    @property
    def label(self) -> str:
        return f"{self.server} recipient policy for {len(self.users)} user(s)"

    @property
    def endpoint(self) -> str:
        return exchange_endpoint(self.server)


class UpdateRecipient(Step[PolicyTarget, int]):
    """Have Exchange process the reconnected users now (address lists, the policy's own
    addresses): Update-Recipient on 2007+; on 2000/2003 the operator's "Update Now" of the
    Recipient Update Service. Once a run: the step's own record is what says it is done."""

    name = "update-recipient"
    impact = Impact.REVERSIBLE
    summary = (
        "Apply the recipient policy to the reconnected users (Update-Recipient; on "
        "2000/2003 the Recipient Update Service's Update Now)"
    )
    wording = Wording("apply the recipient policy on", "server", "servers")

    @classmethod
    def risk(cls, records: Sequence[ChangeRecord]) -> str | None:
        return (
            f"The recipient policy is applied on {endpoints_text(records)} to the reconnected "
            "users (`Update-Recipient`; on Exchange 2000/2003 the run asks you to click Update "
            "Now on the Recipient Update Service and goes on): it adds the policy's own "
            "addresses and address-list membership; restore-recipient runs after it."
        )

    @classmethod
    def rollback(cls, records: Sequence[ChangeRecord]) -> tuple[str, ...]:
        return (
            "Nothing to undo on its own: restore-recipient writes each user's recorded "
            "addresses after it.",
        )

    deadline_s = 0.0

    def __init__(
        self,
        targets: Sequence[PolicyTarget] | Callable[[], Iterable[PolicyTarget]],
        *,
        step_id: str | None = None,
    ) -> None:
        super().__init__(targets, step_id=step_id)
        self._done: set[str] = set()

    def observe(self, ctx: StepContext, targets: Sequence[PolicyTarget]) -> Mapping[str, int]:
        return {target.key: int(target.key in self._done) for target in targets}

    def plan(self, target: PolicyTarget, observation: int) -> Change:
        if observation:
            return NoOp(target.key, "the policy was applied in this run")
        return Planned(
            target.key,
            "update-recipient",
            before={"users": len(target.users)},
            after="policy applied",
        )

    def apply(self, ctx: StepContext, pending: Sequence[tuple[PolicyTarget, Planned]]) -> None:
        for target, _ in pending:
            try:
                ctx.world.exchange.update_recipients(target.server, target.users)
            except ManualActionRequired:
                self._done.add(target.key)  # asked of the operator: the run goes on
                raise
            self._done.add(target.key)  # not before: a call that failed is sent again


class VerifyRecipient(AgainstTheRecord):
    """Each user as recorded before the strip (plus the X500): every attribute that is not is
    named, with what it holds and what it held."""

    name = "verify-recipient"
    impact = Impact.READ
    summary = "Verify: each user's addresses and recipient settings are as before the strip"
    wording = Wording("verify the addresses and settings of", "user", "users")

    unrecorded_text = "nothing recorded to verify"
    same_text = "as before the strip"

    def plan_differences(self, target: RecipientTarget, differ: Differences) -> Change:
        return WouldFail(
            target.key,
            "differs from before the strip: "
            + "; ".join(
                f"{name} is {shown(now)!r}, was {shown(values)!r}"
                for name, (now, values) in differ.items()
            ),
        )

    def apply(self, ctx: StepContext, pending: Sequence[tuple[RecipientTarget, Planned]]) -> None:
        """Verification changes nothing."""
