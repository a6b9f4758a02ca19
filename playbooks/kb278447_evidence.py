"""KB278447: who is affected, decided by evidence, never by which mailbox happens to be connected.

After a repair the old blank is the disconnected mailbox carrying the user's legacyExchangeDN, so
"connected to a small mailbox, a disconnected one carries his legacy DN" also describes every
repaired user; a departed user's mailbox in retention carries the legacy DN a new hire re-uses.
The evidence, in the order it is weighed:

1. the tool's own history: a pairing an earlier run completed is never reversed;
2. the failed upgrade's window (``disconnected_after``/``disconnected_before``): when given, only
   a mailbox the store marked disconnected inside it can be an original, whatever the sizes;
3. identity: the legacy DN or the objectGUID names the mailbox; a user created after a mailbox
   was disconnected never owns it; differing display names, or the legacy DN and the objectGUID
   naming different mailboxes, are for an operator to decide;
4. content: without a window the connected mailbox is the blank only when it holds fewer items
   and less data than the candidate (the original holds the user's history).

Every user with a candidate mailbox is either selected (with the evidence that decided) or
reported with a finding saying why not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from remediate.dn import rdn_value
from remediate.engine.changes import Finding
from remediate.model import DirectoryEntry, MailboxInfo, iso

ALREADY_REPAIRED = "already-repaired"
AMBIGUOUS = "ambiguous"
NOT_AFFECTED = "not-affected"
UNFINISHED = "unfinished-run"
NOT_IMPORTED = "blank-not-imported"
NOT_PURGED = "not-purged"
# Repaired, but his addresses and settings cannot be put back: nothing recorded them.
NOT_RESTORED = "recipient-not-restored"


@dataclass(frozen=True, slots=True)
class Window:
    """When the failed upgrade ran (inclusive); either end may be open."""

    after: datetime | None = None
    before: datetime | None = None

    @property
    def given(self) -> bool:
        return self.after is not None or self.before is not None

    def holds(self, moment: datetime | None) -> bool:
        if moment is None:
            return False
        return (self.after is None or moment >= self.after) and (
            self.before is None or moment <= self.before
        )

    def __str__(self) -> str:
        start = iso(self.after) if self.after else "the beginning"
        end = iso(self.before) if self.before else "now"
        return f"{start} .. {end}"


@dataclass(frozen=True, slots=True)
class Pairing:
    """A user and the original mailbox an earlier run reconnected him to."""

    user: UUID
    original: UUID
    blank: UUID | None
    run_id: str


@dataclass(slots=True)
class History:
    """What earlier runs did: pairings they completed (finished runs) and the users of runs
    that changed something and did not finish (those belong to ``resume``)."""

    completed: dict[UUID, Pairing] = field(default_factory=dict)  # by user
    unfinished: dict[UUID, str] = field(default_factory=dict)  # user -> run id
    old_blanks: dict[UUID, Pairing] = field(default_factory=dict)  # by blank mailbox

    def add(self, pairing: Pairing, *, finished: bool) -> None:
        if finished:
            self.completed[pairing.user] = pairing
            self.unfinished.pop(pairing.user, None)
            if pairing.blank is not None:
                self.old_blanks[pairing.blank] = pairing
        else:
            self.unfinished[pairing.user] = pairing.run_id


@dataclass(frozen=True, slots=True)
class Decision:
    """A user to repair: his original mailbox, the blank one (None: the store never created it,
    or, for a repair half done by hand, it is already disconnected) and what decided.
    ``stripped``: his Exchange attributes were already removed (a repair half done by hand),
    so this run's strip records nothing of them."""

    user: DirectoryEntry
    original: MailboxInfo
    blank: MailboxInfo | None
    evidence: str
    stripped: bool = False


@dataclass(frozen=True, slots=True)
class Rules:
    window: Window
    max_blank_items: int


def describe_mailbox(
    guid: UUID,
    display_name: str,
    items: int,
    *,
    size_bytes: int | None,
    created_at: datetime | None,
    last_logon_at: datetime | None,
    disconnected_at: datetime | None,
) -> str:
    """A mailbox as an approver needs to see it to catch a wrong pairing."""
    parts = [f"{guid} {display_name!r}", f"{items} items"]
    if size_bytes is not None:
        parts.append(f"{size_bytes} bytes")
    for word, moment in (
        ("created", created_at),
        ("last logon", last_logon_at),
        ("disconnected", disconnected_at),
    ):
        if moment is not None:
            parts.append(f"{word} {iso(moment)}")
    return ", ".join(parts)


def describe(box: MailboxInfo) -> str:
    return describe_mailbox(
        box.guid,
        box.display_name,
        box.item_count,
        size_bytes=box.size_bytes,
        created_at=box.created_at,
        last_logon_at=box.last_logon_at,
        disconnected_at=box.disconnected_at,
    )


def _same_name(left: str, right: str) -> bool:
    return " ".join(left.split()).casefold() == " ".join(right.split()).casefold()


def user_name(user: DirectoryEntry) -> str:
    return user.get("displayName") or ""


def named_alike(user: DirectoryEntry, box: MailboxInfo) -> bool:
    """The mailbox carries the user's display name. The store names a mailbox after the user's
    displayName; a user without one is compared with his other names (cn, alias, logon name)."""
    if user.get("displayName"):
        return _same_name(user_name(user), box.display_name)
    names = (rdn_value_or_none(user.dn), user.get("mailNickname"), user.sam_account_name)
    return any(name and _same_name(name, box.display_name) for name in names)


def rdn_value_or_none(dn: str) -> str | None:
    try:
        return rdn_value(dn)
    except ValueError:
        return None


def _holds_less(blank: MailboxInfo, original: MailboxInfo) -> bool:
    """Fewer items and (where both sizes are known) less data."""
    if blank.item_count >= original.item_count:
        return False
    if blank.size_bytes is None or original.size_bytes is None:
        return True
    return blank.size_bytes < original.size_bytes


def _created_before(current: MailboxInfo, candidate: MailboxInfo) -> bool:
    """Where both creation times are known (world files; no store reports one for a
    disconnected mailbox): the connected mailbox is the older one. After a failed upgrade the
    blank is made after the original; after a repair the connected original is the older."""
    return (
        current.created_at is not None
        and candidate.created_at is not None
        and current.created_at < candidate.created_at
    )


def _disconnected(box: MailboxInfo) -> str:
    return iso(box.disconnected_at) if box.disconnected_at else "?"


def _window_hint(box: MailboxInfo) -> str:
    return (
        f"if {box.guid} is the original (disconnected {_disconnected(box)}), give the "
        "failed upgrade's window: -p disconnected_after=... -p disconnected_before=..."
    )


class Judge:
    """Weighs the evidence for each user; collects the decisions and the findings."""

    def __init__(self, rules: Rules, history: History) -> None:
        self.rules = rules
        self.history = history
        self.decisions: list[Decision] = []
        self.findings: list[Finding] = []

    def report(self, kind: str, user: DirectoryEntry, message: str) -> None:
        self.findings.append(Finding(kind, user.dn, message))

    def _remembered(self, user: DirectoryEntry, current: MailboxInfo | None) -> bool:
        """History first: a completed pairing is never reversed, an unfinished run's user is
        left to ``resume``. True when history decided (reported); False when the evidence is
        to be weighed (restricted by :meth:`_allowed` where a pairing is known)."""
        run_id = self.history.unfinished.get(user.guid)
        if run_id is not None:
            self.report(
                UNFINISHED,
                user,
                f"run {run_id} selected this user, changed the "
                f"organisation and did not finish: continue it with 'remediate resume "
                f"{run_id}'; not touched here",
            )
            return True
        pairing = self.history.completed.get(user.guid)
        if pairing is not None and current is not None and current.guid == pairing.original:
            self.report(
                ALREADY_REPAIRED,
                user,
                f"run {pairing.run_id} reconnected this user to "
                f"his original mailbox {describe(current)}; not touched",
            )
            return True
        return False

    def _allowed(
        self, user: DirectoryEntry, current: MailboxInfo | None, candidates: list[MailboxInfo]
    ) -> list[MailboxInfo]:
        """Where an earlier run paired this user with his original and he is on another
        mailbox now, only that original may be his again (never the old blank, never a third
        mailbox); reported when it is not among the candidates."""
        pairing = self.history.completed.get(user.guid)
        if pairing is None:
            return candidates
        allowed = [box for box in candidates if box.guid == pairing.original]
        if not allowed:
            now = describe(current) if current else "no mailbox"
            self.report(
                ALREADY_REPAIRED,
                user,
                f"run {pairing.run_id} reconnected this user to "
                f"mailbox {pairing.original}; he is now on {now} and that mailbox is not "
                "disconnected here: changed since by someone else; never reversed or "
                "paired anew here, check it by hand",
            )
        return allowed

    def _admissible(
        self, user: DirectoryEntry, candidates: Iterable[MailboxInfo]
    ) -> tuple[list[MailboxInfo], list[str]]:
        """The candidates that can be this user's original, and why the others cannot."""
        kept: list[MailboxInfo] = []
        reasons: list[str] = []
        window = self.rules.window
        for box in candidates:
            earlier = self.history.old_blanks.get(box.guid)
            if earlier is not None:
                reasons.append(
                    f"{box.guid} is the blank mailbox run {earlier.run_id} "
                    "disconnected in its repair"
                )
            elif box.disconnected_at is not None and box.disconnected_at < user.when_created:
                reasons.append(
                    f"{describe(box)}: disconnected before this user was created "
                    f"({iso(user.when_created)}), so another person's mailbox"
                )
            elif window.given and not window.holds(box.disconnected_at):
                reasons.append(
                    f"{describe(box)}: not disconnected inside the failed upgrade's window {window}"
                )
            else:
                kept.append(box)
        return kept, reasons

    def _one_original(
        self,
        user: DirectoryEntry,
        kept: Sequence[MailboxInfo],
        reasons: Sequence[str],
        *,
        conflict: bool = False,
    ) -> MailboxInfo | None:
        """The single admissible candidate whose display name is the user's; else reported."""
        if not kept:
            if reasons:
                self.report(
                    NOT_AFFECTED,
                    user,
                    "no disconnected mailbox can be his original: "
                    + "; ".join(reasons)
                    + "; not touched",
                )
            return None
        if len(kept) > 1:
            why = " (his legacy DN and his objectGUID name different mailboxes)" if conflict else ""
            self.report(
                AMBIGUOUS,
                user,
                f"{len(kept)} disconnected mailboxes could be his{why}: "
                + "; ".join(describe(box) for box in kept)
                + "; not touched: reconnect the right one by hand or narrow with "
                "-p users= / the window",
            )
            return None
        original = kept[0]
        name = user_name(user)
        if not named_alike(user, original):
            self.report(
                AMBIGUOUS,
                user,
                f"the user's display name is {name!r}, the candidate "
                f"mailbox's {describe(original)}: another person's, or renamed; not "
                "touched: reconnect it by hand if it is his",
            )
            return None
        return original

    def mail_enabled(
        self,
        user: DirectoryEntry,
        current: MailboxInfo | None,
        by_legacy_dn: list[MailboxInfo],
        by_guid: MailboxInfo | None,
    ) -> None:
        """A user still mail-enabled: connected to ``current`` (None: the mailbox his
        msExchMailboxGuid names was never created)."""
        if self._remembered(user, current):
            return
        candidates = list(by_legacy_dn)
        if by_guid is not None and by_guid not in candidates:
            candidates.append(by_guid)
        candidates = [box for box in candidates if current is None or box.guid != current.guid]
        if not candidates:
            self._allowed(user, current, candidates)
            return
        candidates = self._allowed(user, current, candidates)
        if not candidates:
            return
        if current is not None and current.guid == user.guid:
            self.report(
                NOT_AFFECTED,
                user,
                f"connected to the mailbox whose GUID is his "
                f"objectGUID ({describe(current)}); the disconnected "
                + ", ".join(str(box.guid) for box in candidates)
                + " left alone",
            )
            return
        kept, reasons = self._admissible(user, candidates)
        conflict = (
            by_guid is not None
            and by_guid in kept
            and any(box in kept for box in by_legacy_dn if box is not by_guid)
        )
        original = self._one_original(user, kept, reasons, conflict=conflict)
        if original is None:
            return
        evidence = self._evidence(user, current, original)
        if evidence is not None:
            self.decisions.append(Decision(user, original, current, evidence))

    def _evidence(
        self, user: DirectoryEntry, current: MailboxInfo | None, original: MailboxInfo
    ) -> str | None:
        """Why ``current`` is the blank and ``original`` the user's (None: it is not shown)."""
        identity = (
            "objectGUID" if original.guid == user.guid else "legacyExchangeDN"
        ) + " and display name"
        if current is None:
            return (
                f"identity ({identity}); the mailbox his msExchMailboxGuid names was never "
                "created (no logon or mail since), so nothing to export"
            )
        if self.rules.window.given:
            return (
                f"window: disconnected {_disconnected(original)} inside "
                f"{self.rules.window}; identity ({identity})"
            )
        limit = self.rules.max_blank_items
        older = _created_before(current, original)
        if _holds_less(current, original) and current.item_count <= limit and not older:
            return (
                f"content: the connected mailbox holds less ({current.item_count} items) "
                f"than the candidate ({original.item_count}); identity ({identity})"
            )
        if current.item_count > limit:
            why = f"holds more than max_blank_items={limit}"
        elif older:
            why = "was created before the candidate (the older mailbox holds the history)"
        else:
            why = "does not hold fewer items and less data than the candidate"
        self.report(
            NOT_AFFECTED,
            user,
            f"the connected mailbox {describe(current)} {why} "
            f"({describe(original)}); {_window_hint(original)}; not touched",
        )
        return None

    def stripped(self, user: DirectoryEntry, boxes: Sequence[MailboxInfo]) -> None:
        """A user without Exchange attributes whose identity some disconnected mailboxes carry:
        a repair half done by hand (stripped; the blank disconnected too) when the evidence
        says which one is the original."""
        if self._remembered(user, None):
            return
        boxes = self._allowed(user, None, list(boxes))
        if not boxes:
            return
        kept, reasons = self._admissible(user, boxes)
        name = user_name(user)
        named = [box for box in kept if named_alike(user, box)]
        reasons += [
            f"{describe(box)}: display name is not the user's {name!r}"
            for box in kept
            if box not in named
        ]
        if self.rules.window.given:
            originals = named  # only those disconnected inside the window were kept
        elif len(named) == 1:
            self.report(
                AMBIGUOUS,
                user,
                "not mail-enabled (Exchange attributes removed) and "
                f"one disconnected mailbox carries his identity ({describe(named[0])}): "
                "a repair half done by hand, or a mailbox disabled on purpose; not "
                "touched: give the failed upgrade's window (-p disconnected_after=... "
                "-p disconnected_before=...) if it is the first",
            )
            return
        else:
            originals = self._older_and_fuller(named)
        if len(originals) != 1:
            if originals or reasons:
                what = "; ".join(describe(box) for box in originals) or "none"
                self.report(
                    AMBIGUOUS if originals else NOT_AFFECTED,
                    user,
                    "not mail-enabled (Exchange attributes removed) and no single "
                    f"original among the disconnected mailboxes carrying his identity "
                    f"(candidates: {what}"
                    + ("; " + "; ".join(reasons) if reasons else "")
                    + "); a repair half done by hand, or a mailbox disabled on purpose: "
                    "not touched; give the failed upgrade's window if it is the first",
                )
            return
        original = originals[0]
        leftovers = [
            box
            for box in boxes
            if box is not original and box.item_count and box.guid not in self.history.old_blanks
        ]
        if leftovers:
            self.report(
                NOT_IMPORTED,
                user,
                "the blank "
                + "; ".join(map(describe, leftovers))
                + " is already disconnected and no export tool opens a disconnected "
                "mailbox: its items stay in it (never purged by this run); to bring "
                "them over, reconnect it to a helper account and export it, or on "
                "2010 SP1+ New-MailboxRestoreRequest it into his mailbox",
            )
        evidence = (
            f"window: disconnected {_disconnected(original)} inside {self.rules.window}"
            if self.rules.window.given
            else "content: disconnected first and holds more than the other mailbox carrying "
            "his identity"
        )
        self.decisions.append(
            Decision(
                user,
                original,
                None,
                f"repair half done by hand (Exchange attributes already "
                f"removed); {evidence}; identity and display name",
                stripped=True,
            )
        )

    @staticmethod
    def _older_and_fuller(boxes: Sequence[MailboxInfo]) -> list[MailboxInfo]:
        """Without a window, of exactly two mailboxes the original is the one disconnected
        first that also holds more (the upgrade disconnected it, the strip by hand the blank
        later); otherwise every box stays a candidate (not evidence enough)."""
        if len(boxes) != 2:
            return list(boxes)
        first, second = sorted(boxes, key=lambda box: box.disconnected_at or datetime.max)
        if (
            first.disconnected_at is not None
            and second.disconnected_at is not None
            and first.disconnected_at < second.disconnected_at
            and _holds_less(second, first)
        ):
            return [first]
        return list(boxes)

    def claimed_twice(self) -> None:
        """One original claimed by two users: neither gets it."""
        claims: dict[UUID, list[Decision]] = {}
        for decision in self.decisions:
            claims.setdefault(decision.original.guid, []).append(decision)
        for guid, claimants in claims.items():
            if len(claimants) < 2:
                continue
            names = ", ".join(d.user.dn for d in claimants)
            for decision in claimants:
                self.report(
                    AMBIGUOUS,
                    decision.user,
                    f"mailbox {guid} could be the original of "
                    f"{len(claimants)} users ({names}); not touched",
                )
        self.decisions = [d for d in self.decisions if len(claims[d.original.guid]) == 1]


def legacy_dn_index(mailboxes: Iterable[MailboxInfo]) -> dict[str, list[MailboxInfo]]:
    """Disconnected mailboxes by lower-cased legacy DN."""
    index: dict[str, list[MailboxInfo]] = {}
    for box in mailboxes:
        if box.disconnected:
            index.setdefault(box.legacy_dn.lower(), []).append(box)
    return index


def alias_of(legacy_dn: str) -> str | None:
    """The recipient's alias: the last ``cn=`` of a legacy DN (``.../cn=Recipients/cn=jdoe``)."""
    last = legacy_dn.rsplit("/", 1)[-1]
    return last[3:] if last.lower().startswith("cn=") and len(last) > 3 else None


def stripped_owners(
    orphans: Sequence[MailboxInfo],
    by_guid: Mapping[UUID, DirectoryEntry],
    by_sam: Mapping[str, DirectoryEntry],
) -> dict[UUID, tuple[DirectoryEntry, list[MailboxInfo]]]:
    """Users without Exchange attributes that unclaimed disconnected mailboxes name: by
    objectGUID, or by the alias of their legacy DN equal to the user's sAMAccountName."""
    owners: dict[UUID, tuple[DirectoryEntry, list[MailboxInfo]]] = {}
    for box in orphans:
        user = by_guid.get(box.guid)
        alias = alias_of(box.legacy_dn)
        if user is None and alias is not None:
            user = by_sam.get(alias.lower())
        if user is None or user.mail_enabled:
            continue
        owners.setdefault(user.guid, (user, []))[1].append(box)
    return owners
