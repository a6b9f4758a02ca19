"""What the WinRM adapter reads from AD through ``ports.ExchangeCatalog`` (our own LDAP
connection) instead of through the Exchange server, whose plain NTLM session could not pass
credentials on to a DC (the double hop): the owners of mailboxes, the users a script acts on,
and the rights ExMerge needs on a store. Each check refuses with what to do, never guesses."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from remediate.errors import PermanentError
from remediate.model import DirectoryEntry
from remediate.ports import ExchangeCatalog

from .config import ServerConfig

# The extended rights ExMerge needs on a mailbox store (KB273642, cited by KB278447; KB292509),
# by rightsGuid.
STORE_RIGHTS = {
    UUID("ab721a54-1e2f-11d0-9819-00aa0040529b"): "Send As",
    UUID("ab721a56-1e2f-11d0-9819-00aa0040529b"): "Receive As",
}


def users(
    catalog: ExchangeCatalog,
    server: str,
    operation: str,
    wanted: Sequence[UUID],
    *,
    unmailed: bool = False,
) -> dict[UUID, DirectoryEntry]:
    """The users as the pinned DC sees them; one that is not there is refused, and with
    ``unmailed`` one that is still mail-enabled (a reconnect would fail on it)."""
    found = catalog.recipients(wanted)
    for guid in wanted:
        entry = found.get(guid)
        if entry is None:
            problem = f"no user with objectGUID {guid}"
        elif unmailed and entry.mail_enabled:
            problem = f"user {entry.dn} is still mail-enabled"
        else:
            continue
        raise PermanentError(
            problem, endpoint=server, operation=f"exchange.{operation}", target=str(guid)
        )
    return found


def owners(catalog: ExchangeCatalog, server: str, mailboxes: Sequence[UUID]) -> dict[UUID, UUID]:
    """Each mailbox's owner in the forest; a mailbox two users claim is refused, not guessed."""
    found: dict[UUID, UUID] = {}
    for mailbox, claimants in catalog.mailbox_owners(mailboxes).items():
        if len(claimants) > 1:
            names = "; ".join(dn for _, dn in claimants)
            raise PermanentError(
                f"mailbox {mailbox} is claimed by {len(claimants)} users of the forest "
                f"({names}): remediate will not guess which owns it",
                endpoint=server,
                operation="exchange.mailboxes",
                target=str(mailbox),
                hint="clear msExchMailboxGuid on the user that does not own it, then plan again",
            )
        if claimants:
            found[mailbox] = claimants[0][0]
    return found


def missing_store_rights(catalog: ExchangeCatalog, config: ServerConfig) -> list[str]:
    """What to grant on each of the server's mailbox stores: ExMerge runs as the WinRM account
    and needs Send As and Receive As on each store it works in (KB292509)."""
    problems = []
    for store in catalog.mailbox_stores(config.server):
        held = catalog.extended_rights(store.dn, config.identity, STORE_RIGHTS)
        missing = " and ".join(name for right, name in STORE_RIGHTS.items() if right not in held)
        if missing:
            problems.append(
                f"grant {missing} on {store.storage_group}\\{store.name} ({config.server}) to "
                f"{config.identity} (Exchange System Manager > the store > Properties > "
                "Security; on Exchange 2003 through a security group, since the built-in "
                "administrators inherit a Deny: KB292509)"
            )
    return problems
