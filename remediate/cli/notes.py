"""What a change approver needs besides the change list: each step's changes in words, what is
destructive or disruptive and what users notice, and how to roll each step back.

Keyed by step name (a step id is its name, or its name plus a suffix such as
``run-cleanup-agent-after-reconnect``), so a playbook's report holds the notes of exactly the
steps its plan contains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from remediate.engine.changes import ChangeRecord

# step name -> (verb, one, many)
_WORDS: dict[str, tuple[str, str, str]] = {
    "export-mail": ("export", "mailbox", "mailboxes"),
    "delete-ad-user": ("delete", "user", "users"),
    "remove-exchange-attributes": ("remove the Exchange attributes of", "user", "users"),
    "wait-for-replication": ("wait for replication to", "domain controller",
                             "domain controllers"),
    "run-cleanup-agent": ("run the cleanup agent on", "store", "stores"),
    "purge-mailbox": ("purge", "mailbox", "mailboxes"),
    "reconnect-mailbox": ("reconnect", "mailbox", "mailboxes"),
    "update-recipient": ("apply the recipient policy on", "server", "servers"),
    "restore-recipient": ("restore the addresses and settings of", "user", "users"),
    "verify-recipient": ("verify the addresses and settings of", "user", "users"),
    "import-mail": ("import mail into", "mailbox", "mailboxes"),
    "stop-service": ("stop", "service", "services"),
    "start-service": ("start", "service", "services"),
    "verify": ("verify", "target", "targets"),
}


def step_name(step_id: str) -> str:
    """The step's kind: ``run-cleanup-agent-after-reconnect`` -> ``run-cleanup-agent``."""
    known = [name for name in _WORDS if step_id == name or step_id.startswith(name + "-")]
    return max(known, key=len) if known else step_id


def where(endpoint: str) -> str:
    """``directory`` -> 'in Active Directory'; ``exchange:EXCH01`` -> 'on EXCH01'."""
    if endpoint == "directory":
        return "in Active Directory"
    kind, sep, name = endpoint.partition(":")
    if kind == "dc" and name:
        return f"({name})"
    return f"on {name}" if sep and name else f"on {endpoint}" if endpoint else ""


def _service(label: str) -> str:
    return label.rpartition(" service ")[2] or label


def in_words(step_id: str, records: Sequence[ChangeRecord]) -> list[str]:
    """One phrase per endpoint: 'delete 37 users in Active Directory', 'purge 37 mailboxes on
    EXCH01', 'stop 2 services on EXCH01 (MSExchangeMTA, SMTPSVC)'."""
    verb, one, many = _WORDS.get(step_name(step_id), (step_id, "change", "changes"))
    by_endpoint: dict[str, list[ChangeRecord]] = {}
    for record in records:
        by_endpoint.setdefault(record.endpoint, []).append(record)
    phrases = []
    for endpoint, group in by_endpoint.items():
        count = len(group)
        phrase = f"{verb} {count} {one if count == 1 else many}"
        if endpoint:
            phrase += f" {where(endpoint)}"
        if step_name(step_id) in ("stop-service", "start-service"):
            phrase += " (" + ", ".join(_service(r.label) for r in group) + ")"
        phrases.append(phrase)
    return phrases


def endpoints_text(records: Sequence[ChangeRecord]) -> str:
    names = []
    for record in records:
        text = where(record.endpoint).removeprefix("on ").removeprefix("in ")
        if text and text not in names:
            names.append(text)
    return ", ".join(names)


_RECONNECT = (
    "Exchange System Manager: Mailboxes > right-click the disconnected mailbox > Reconnect, or "
    "MBConn, on 2000/2003; `Connect-Mailbox` on 2007 and later"
)


@dataclass(frozen=True, slots=True)
class StepNotes:
    """``risk``: what is destructive or disruptive and what users notice (None: nothing to
    say); ``rollback``: how to undo it, as Markdown lines (never built from target names)."""

    risk: str | None
    rollback: tuple[str, ...]


def notes(step_id: str, records: Sequence[ChangeRecord]) -> StepNotes:
    """The notes of one step, given the changes it makes. Only counts and server names from the
    records go into the text; callers escape them (they come from the world)."""
    name = step_name(step_id)
    count = len(records)
    at = endpoints_text(records)
    if name == "delete-ad-user":
        children = sum(r.deletes - 1 for r in records if r.deletes > 1)
        below = f" and {children} object(s) below them (Tree Delete)" if children else ""
        return StepNotes(
            f"**Destructive.** {count} user object(s){below} are deleted from Active "
            "Directory. They become tombstones: no logon, no address-book entry, no mail "
            "delivery to them. Tombstone reanimation brings an object back only until the "
            "tombstone lifetime (60 or 180 days, forest setting) runs out; group memberships "
            "and most other attributes are stripped from a tombstone and come back only from "
            "the LDIF backup (or the AD Recycle Bin, where enabled).",
            (
                "Each deleted object and everything below it was written, before the delete, "
                "to `backups/ad/delete-ad-user-*.ldif` in the run directory.",
                "Reanimate the tombstone (parents before children): with the AD Recycle Bin "
                "(Windows Server 2008 R2 and later) `Get-ADObject -Filter \"objectGUID -eq "
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
                f"reconnecting it ({_RECONNECT}); one whose mailbox was purged gets a new "
                "mailbox and the export imported into it.",
            ),
        )
    if name == "purge-mailbox":
        return StepNotes(
            f"**Destructive.** {count} disconnected mailbox(es) are purged from the store on "
            f"{at}: they can no longer be reconnected. Their content survives only in this "
            "run's exports (every mailbox that held items is exported first; a purge without "
            "a complete export is refused) and in your Exchange backups.",
            (
                "The exports are in `backups/mail/<server>/<mailbox guid>.*` in the run "
                "directory.",
                "To restore a purged mailbox: mail-enable the user again (Exchange 2000/2003: "
                "Exchange Tasks > Create Mailbox; 2007 and later: `Enable-Mailbox`), then "
                "import the export: ExMerge (Exchange 2000/2003, *Import data into an "
                "Exchange mailbox*), `Import-Mailbox -PSTFolderPath` (2007) or "
                "`New-MailboxImportRequest -Mailbox <user> -FilePath \\\\server\\share\\"
                "<file>.pst` (2010 SP1 and later).",
            ),
        )
    if name == "stop-service":
        return StepNotes(
            f"**Disruptive.** Transport stops on {at} ({count} service(s)) for the duration "
            "of the run, until start-service: no mail is sent from or delivered to mailboxes "
            "there; other servers queue mail for them and deliver it after the restart "
            "(delays, possibly delay notifications to senders). Users can still read what "
            "is in their mailboxes.",
            (
                "start-service starts exactly the services this run stopped. If the run "
                "stops before that step, start them by hand: `net start <service>` or "
                "`Start-Service <service>` on the server (the stopped services are listed "
                "in the stop-service table).",
            ),
        )
    if name == "remove-exchange-attributes":
        return StepNotes(
            f"**Disruptive.** {count} user(s) lose their Exchange attributes (Exchange Tasks "
            "> Delete Mailbox; `Disable-Mailbox` on 2007 and later, which also clears "
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
            "change window for it; transport stays stopped until restore-recipient is done.",
            (
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
            ),
        )
    if name == "update-recipient":
        return StepNotes(
            f"The recipient policy is applied on {at} to the reconnected users "
            "(`Update-Recipient`; on Exchange 2000/2003 the run asks you to click Update Now "
            "on the Recipient Update Service and goes on): it adds the policy's own "
            "addresses and address-list membership; restore-recipient runs after it.",
            (
                "Nothing to undo on its own: restore-recipient writes each user's recorded "
                "addresses after it.",
            ),
        )
    if name == "restore-recipient":
        return StepNotes(
            f"{count} user(s) get back, as they were before the strip, their alias, primary "
            "and secondary addresses (X500, X.400 included; an X500 of the former "
            "legacyExchangeDN is added where the reconnect changed it), forwarding, "
            "delegates, sender restrictions, quotas, hidden-from-address-lists, extension "
            "attributes and mailbox rights: each change lists what comes back. Address "
            "lists and the offline address book show them after their next update. A user "
            "whose Exchange attributes were removed before the run (a repair half done by "
            "hand) has no record from before the strip: nothing is restored for him, he keeps "
            "what the policy gives, and the findings name him (`recipient-not-restored`).",
            (
                "Each user's values before this step are in this step's changes (`before`), "
                "and the strip's LDIF holds the values from before the strip. To undo: "
                "`Set-Mailbox`/ADSI Edit with the `before` values, or an `ldifde -i` of "
                "`replace:` records made from them.",
            ),
        )
    if name == "reconnect-mailbox":
        return StepNotes(
            f"{count} original mailbox(es) on {at} are reconnected to their users: they see "
            "their old mail again; Outlook may need to be restarted (or the profile "
            "recreated) to open it.",
            (
                "To undo a reconnect: disconnect the mailbox again (Exchange Tasks > Delete "
                "Mailbox on 2000/2003, `Disable-Mailbox` on 2007 and later), let the cleanup "
                f"agent mark it disconnected, then reconnect the other one ({_RECONNECT}).",
            ),
        )
    if name == "export-mail":
        return StepNotes(
            None,
            (
                f"Exports ({count} mailbox(es)) go to `backups/mail/` in the run directory; "
                "they change nothing on the server. Keep the run directory until the change "
                "is accepted: it is the only copy of mail in purged mailboxes.",
            ),
        )
    if name == "import-mail":
        return StepNotes(
            f"{count} mailbox(es) on {at} receive the items that reached the blank mailboxes "
            "(users see them in the same folders).",
            (
                "Imported items are copies of the exports in `backups/mail/`; to undo, "
                "delete them from the mailbox (each export lists the item ids and "
                "subjects).",
            ),
        )
    if name == "run-cleanup-agent":
        return StepNotes(
            None,
            (
                "The cleanup agent only marks mailboxes whose user no longer points at them "
                f"as disconnected; reconnecting a mailbox undoes that ({_RECONNECT}).",
            ),
        )
    return StepNotes(None, ())


# What users notice, and the order to undo things in, per playbook.
PLAYBOOK_NOTES: dict[str, tuple[str, ...]] = {
    "kb842101": (
        "The deleted users are the destination accounts the cancelled Migration Wizard run "
        "created; their source accounts are not touched. A user who already logged on to a "
        "destination mailbox (an initialized mailbox, the cause of the merge) loses it; the "
        "mail that reached it is exported first.",
        "After the run, re-run the Migration Wizard in clone mode.",
    ),
    "kb278447": (
        "Affected users are connected to a new blank mailbox now; after the run they are "
        "back on their original mailbox with the items from the blank one imported into it.",
        "During the run: transport is stopped on the affected servers; each affected user "
        "has no mailbox between remove-exchange-attributes and reconnect-mailbox, and only "
        "the recipient policy's addresses (mail to any other of his addresses bounces, "
        "forwarding and delegates are off, he may show in address lists he was hidden from) "
        "until restore-recipient; transport starts again only after it.",
    ),
}

ROLLBACK_ORDER: dict[str, str] = {
    "kb842101": (
        "To undo the whole run: reanimate the deleted users from their tombstones (parents "
        "before children) and restore their attributes from the LDIF; then, for each "
        "mailbox, reconnect it if it was not purged yet, or create a mailbox and import its "
        "export if it was."
    ),
    "kb278447": (
        "To undo the whole run, in reverse order: start any service left stopped; remove "
        "imported items if needed; disconnect the reconnected original mailbox; reconnect "
        "the blank mailbox (or re-import the stripped attributes: `ldifde -i -f "
        "backups/ad/remove-exchange-attributes-<...>.ldif -s <DC>`). The users are then back "
        "where they started, with the original mailbox disconnected."
    ),
}
