"""Which users a cancelled Migration Wizard run created (kb842101), and which it only matched.

No attribute marks what the wizard created; the operator scopes it (an OU and/or names, always
with the run's ``whenCreated`` window). The wizard also reuses what existed before it ran, and
deleting one of those loses an account that predates the migration (its password, group
memberships and sIDHistory), so each rule below keeps an object out and says why:

- ``isCriticalSystemObject``: the DC's own accounts (Administrator, krbtgt, Guest; MS-ADTS
  3.1.1.1.17 "Critical system objects"); AD itself refuses to delete some of them.
- ``adminCount=1``: AdminSDHolder protects the account; it is or was a member of a protected
  group (Domain Admins, Account Operators, ...), never something a migration made.
- a well-known or built-in RID: account RIDs below 1000 are reserved for the accounts and groups
  Windows creates (500 Administrator, 501 Guest, 502 krbtgt; MS-DTYP 2.4.2.4); SIDs in the
  BUILTIN domain (S-1-5-32-...) are not the domain's own accounts at all.
- ``sIDHistory``: the account was migrated earlier (ADMT) and the wizard matched it by SID
  instead of creating one (KB297349; Exchange 2003 Deployment Guide, "Selecting Which Accounts
  to Migrate"; research/exchange_ad_facts.md §5.6, §12).
- created before the window: it existed before the cancelled run. A contact the wizard turned
  into a user, or an account it matched by logon name, keeps its creation time; where the user's
  mailbox was created inside the window (``msExchWhenMailboxCreated``), the cancelled run gave an
  existing account a mailbox: only that mailbox may go (``mailbox_only``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from remediate.dn import normalize
from remediate.model import DirectoryEntry, iso, utc
from remediate.sids import sid_text

WELL_KNOWN_RIDS_BELOW = 1000
_BUILTIN_DOMAIN = "S-1-5-32-"


@dataclass(frozen=True, slots=True)
class Window:
    """The cancelled run's ``whenCreated`` window, both ends inclusive."""

    after: datetime
    before: datetime

    def holds(self, moment: datetime) -> bool:
        return self.after <= moment <= self.before

    def __str__(self) -> str:
        return f"{iso(self.after)} .. {iso(self.before)}"


def never_selected(entry: DirectoryEntry) -> str | None:
    """Why this user must never be deleted, whatever the scope says (None: nothing here)."""
    if (entry.get("isCriticalSystemObject") or "").upper() == "TRUE":
        return "a critical system object (isCriticalSystemObject=TRUE): one of the DC's own"
    if (entry.get("adminCount") or "").strip() == "1":
        return (
            "protected by AdminSDHolder (adminCount=1): a privileged account, or one that "
            "was, never one a migration created"
        )
    sid = _sids(entry, "objectSid")
    rid = _well_known(sid[0] if sid else None)
    if rid is not None:
        return f"a built-in or well-known account ({rid})"
    history = _sids(entry, "sIDHistory")
    if history:
        return (
            f"carries sIDHistory ({history[0]}): an account migrated earlier (ADMT) that "
            "the wizard matched instead of creating it"
        )
    return None


def _sids(entry: DirectoryEntry, name: str) -> list[str]:
    """A SID attribute as S-1-5-...: AD (and so the ldap3 adapter) holds it as bytes, kept as
    they are for the LDIF backups; a world file may give it as text."""
    value = entry.attributes.get(name) or entry.get(name)
    if value:
        return list(value) if isinstance(value, list) else [value]
    texts = []
    for raw in entry.get_binary(name) or ():
        try:
            texts.append(sid_text(raw))
        except ValueError:
            texts.append(raw.hex())  # present, if unreadable: still a reason to keep the account
    return texts


def _well_known(sid: str | None) -> str | None:
    if not sid:
        return None
    if sid.upper().startswith(_BUILTIN_DOMAIN):
        return f"objectSid {sid} is in the BUILTIN domain"
    try:
        rid = int(sid.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None
    return f"RID {rid}, below {WELL_KNOWN_RIDS_BELOW}" if rid < WELL_KNOWN_RIDS_BELOW else None


def mailbox_created(entry: DirectoryEntry) -> datetime | None:
    """When Exchange created this user's mailbox (``msExchWhenMailboxCreated``, GeneralizedTime
    as AD holds it or ISO 8601 as world files do); None where it is not recorded."""
    text = entry.get("msExchWhenMailboxCreated")
    if not text:
        return None
    try:
        if text[:14].isdigit():
            return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        return utc(text)
    except ValueError:
        return None


def mailbox_made_in(entry: DirectoryEntry, window: Window) -> datetime | None:
    """The mailbox creation time of an account that predates the window, when it lies inside
    it (the cancelled run gave an existing account a mailbox), else None."""
    made = mailbox_created(entry)
    if made is None or not entry.mail_enabled or entry.when_created >= window.after:
        return None
    return made if window.holds(made) else None


def account_key(name: str) -> str:
    """How a line of the wizard's account list compares: a DN as AD compares names, a
    sAMAccountName case-insensitively."""
    if "=" in name:
        try:
            return normalize(name)
        except ValueError:
            pass
    return name.lower()


def unlisted(names: Iterable[str], users: Iterable[tuple[str, str]]) -> list[str]:
    """The entries of ``names`` (sAMAccountNames or DNs) that none of ``users``
    (sAMAccountName, DN) is."""
    known = {account_key(value) for pair in users for value in pair}
    return sorted({name for name in names if account_key(name) not in known}, key=str.lower)
