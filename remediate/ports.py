"""The two ports every step talks to. Real adapters (ldap3, pywinrm) and the fakes implement them.

Batch-shaped on purpose: a step hands one endpoint all of its targets at once, so an adapter can
answer with one paged LDAP search or one WinRM call per server.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Protocol
from uuid import UUID

from remediate.clock import Clock
from remediate.model import (
    ConnectAs,
    DirectoryEntry,
    ExchangeServer,
    ExportRef,
    MailboxInfo,
    ServiceState,
    Store,
    UserQuery,
    WriteValue,
)


class ManualActionRequired(Exception):
    """Raised by an adapter when no API exists and the operator must act (e.g. the E2003
    cleanup agent). The engine shows ``instructions`` and waits for the effect.

    A fake sets ``rehearse`` to what the operator's action does, so a rehearsal (the plan) can
    play the operator; adapters of real servers leave it None."""

    def __init__(self, instructions: str, rehearse: Callable[[], None] | None = None) -> None:
        self.instructions = instructions
        self.rehearse = rehearse
        super().__init__(instructions)


class Directory(Protocol):
    """Active Directory, one domain."""

    @property
    def domain(self) -> str: ...

    @property
    def base_dn(self) -> str: ...

    def domain_controllers(self) -> Sequence[str]:
        """Every DC of the domain, by name."""
        ...

    def writable_dc(self) -> str:
        """The DC all writes of this run go to (pinned)."""
        ...

    def replication_delays(self) -> dict[str, float]:
        """How long, in seconds, a change takes to reach each DC (AD: the replication interval
        of its site link; 0 within a site), and each global catalog of another domain holding a
        partial replica of this one. Rehearsals and snapshots model lag with it."""
        ...

    def find_users(self, query: UserQuery, dc: str | None = None) -> list[DirectoryEntry]:
        """Live (not deleted) user objects matching every criterion of ``query``."""
        ...

    def lookup(self, dn: str, dc: str | None = None) -> DirectoryEntry | None:
        """The live object named ``dn`` (any class) as ``dc`` (default: the pinned DC) sees
        it; None when there is none (a mistyped OU), not an error."""
        ...

    def read(
        self, guids: Collection[UUID], dc: str, *, include_deleted: bool = False
    ) -> dict[UUID, DirectoryEntry]:
        """The objects with these GUIDs as ``dc`` sees them; absent ones are left out.
        With ``include_deleted`` tombstones are returned too (``deleted=True``)."""
        ...

    def read_catalog(self, guids: Collection[UUID], gc: str) -> dict[UUID, DirectoryEntry]:
        """The live objects with these GUIDs in this domain's partition as the global catalog
        ``gc`` holds it (LDAP: its GC port, 3268/3269), absent ones left out. A GC outside the
        domain holds a read-only partial replica: only the partial attribute set's attributes,
        and a deleted object is simply gone from it. What an Exchange server's store sees."""
        ...

    def descendants(self, guids: Collection[UUID], dc: str) -> dict[UUID, list[DirectoryEntry]]:
        """Live objects below each of these objects (what a Tree Delete removes with it)."""
        ...

    def delete(self, guid: UUID, *, tree: bool) -> None:
        """Delete on the pinned DC; ``tree`` sends the Tree Delete control."""
        ...

    def modify(self, guid: UUID, changes: Mapping[str, WriteValue | None]) -> None:
        """Replace attributes on the pinned DC; ``None`` clears one; bytes are the values of a
        binary attribute."""
        ...

    def forest_namesakes(
        self, sam_account_names: Collection[str]
    ) -> dict[str, list[tuple[UUID, str]]]:
        """For each sAMAccountName (as given), the objectGUID and DN of every user in the forest
        that has it, as a global catalog sees them (LDAP: ports 3268/3269). Exchange 2003's
        Exchange_Mailbox.Reconnect takes only a sAMAccountName and binds "the first userid with
        a matching samaccountname in the forest" (Exchange 2003 SDK, Reconnect Method)."""
        ...

    def unprotect(self, guid: UUID) -> None:
        """Remove "protect from accidental deletion" (the deny-delete ACE for Everyone) on the
        pinned DC; only ever called when the operator explicitly allowed it."""
        ...

    # The organisation's lease (remediate.engine.lease): one object whose existence says a run
    # holds the organisation, its ``description`` the holder's record. Every call goes to the
    # pinned DC, so two runs contend on one DC and its add is the arbiter.

    def lease(self, dn: str) -> str | None:
        """The record of the lease object ``dn`` (its description), None if there is none."""
        ...

    def add_lease(self, dn: str, record: str) -> bool:
        """Create the lease object ``dn`` holding ``record``; False if it exists already (LDAP
        entryAlreadyExists): two adds of one name cannot both succeed."""
        ...

    def swap_lease(self, dn: str, old: str, new: str) -> bool:
        """Replace the record ``old`` with ``new`` in one modify (delete that value, add the
        new one), so it fails, False, if the record is no longer ``old``: a compare-and-swap."""
        ...

    def remove_lease(self, dn: str, record: str) -> bool:
        """Delete the lease object if it still holds ``record``; False if not (or gone)."""
        ...


class ExchangeCatalog(Protocol):
    """What the Exchange adapter over WinRM reads from Active Directory with our own LDAP
    connection instead of from the Exchange server: a WinRM session authenticated by plain NTLM
    holds no credentials the server could pass on to a DC (the double hop), so a script that
    searched AD there would fail. The engine and the steps never see this port; the adapters
    of real servers and the fakes implement it."""

    def mailbox_owners(self, mailbox_guids: Collection[UUID]) -> dict[UUID, list[tuple[UUID, str]]]:
        """For each mailbox GUID, the objectGUID and DN of every user in the forest whose
        msExchMailboxGuid names it (as a global catalog sees them); none: an empty list."""
        ...

    def mailbox_stores(self, server: str) -> list[Store]:
        """The mailbox stores (Exchange 2000/2003 msExchPrivateMDB objects of the configuration
        naming context) that ``server`` owns (msExchOwningServer)."""
        ...

    def recipients(self, guids: Collection[UUID]) -> dict[UUID, DirectoryEntry]:
        """These users as the run's pinned DC sees them (absent ones left out): the DN and
        sAMAccountName a script is handed, and whether they are still mail-enabled."""
        ...

    def extended_rights(self, dn: str, account: str, rights: Collection[UUID]) -> set[UUID]:
        """Which of these extended rights (by rightsGuid) ``account`` (``DOMAIN\\name`` or
        ``name@domain``) holds on the object ``dn``, as Windows' access check decides from the
        object's DACL and the account's groups: ExMerge needs Send As and Receive As on the
        mailbox store (KB292509)."""
        ...


# Which port methods only read and which change the servers' state: the engine retries a read
# call by call, and sends a change again only after a fresh observe shows it did not happen.
DIRECTORY_READS = frozenset(
    {
        "domain_controllers",
        "writable_dc",
        "replication_delays",
        "find_users",
        "lookup",
        "read",
        "read_catalog",
        "descendants",
        "forest_namesakes",
    }
)
DIRECTORY_CHANGES = frozenset({"delete", "modify", "unprotect"})
# The lease's own calls: never part of a step, so neither retried by the executor nor planned.
DIRECTORY_LEASE = frozenset({"lease", "add_lease", "swap_lease", "remove_lease"})


class Exchange(Protocol):
    """An Exchange organisation: servers, stores, mailboxes, services."""

    def servers(self) -> Sequence[ExchangeServer]: ...

    def stores(self, server: str) -> Sequence[Store]: ...

    def mailboxes(self, server: str, guids: Collection[UUID] | None = None) -> list[MailboxInfo]:
        """Mailboxes on ``server`` (all, or only these GUIDs): one call per server. Real stores
        report an item count and size, not item ids (``MailboxInfo.item_ids`` is None).

        A GUID is not unique on a server: beside the mailbox itself a recovery storage group or
        recovery database may hold a restored copy, and a database a move's soft-deleted
        leftover; each is listed, with its store and ``MailboxInfo.copy``. Only active database
        copies are read (Get-MailboxStatistics without -IncludePassive), so a database
        replicated to other servers lists its mailboxes once."""
        ...

    def service_states(self, server: str, names: Collection[str]) -> dict[str, ServiceState]: ...

    def running_dependents(self, server: str, names: Collection[str]) -> dict[str, list[str]]:
        """For each of these services, the running services that depend on it (what
        ``Stop-Service -Force`` stops with it, so what must be started again)."""
        ...

    def set_services(self, server: str, names: Sequence[str], state: ServiceState) -> None: ...

    def run_cleanup_agent(self, server: str, store_dns: Collection[str]) -> None:
        """Mark mailboxes whose user no longer points at them as disconnected.
        May raise :class:`ManualActionRequired` (Exchange 2000/2003)."""
        ...

    # ``stores`` (the calls below that act on a mailbox): the store DN each mailbox was seen in
    # (MailboxInfo.store_dn). Only the mailbox itself is ever acted on, never a recovery or
    # soft-deleted copy of it; one no longer in the store given is refused (it moved since).

    def purge_mailboxes(
        self, server: str, guids: Collection[UUID], stores: Mapping[UUID, str] | None = None
    ) -> None:
        """Physically delete disconnected mailboxes."""
        ...

    def disable_mailboxes(self, server: str, users: Collection[UUID]) -> None:
        """Strip the Exchange attributes of these users (Disable-Mailbox), written through
        the server's own DC."""
        ...

    def reconnect_mailboxes(
        self,
        server: str,
        pairs: Sequence[tuple[UUID, UUID]],
        connect_as: Mapping[UUID, ConnectAs] | None = None,
        stores: Mapping[UUID, str] | None = None,
    ) -> None:
        """Connect each (mailbox, user) pair; refused while the user is still mail-enabled.
        ``connect_as`` (by user; 2007+): the parameter set and -Archive; default a user
        mailbox without its archive."""
        ...

    def update_recipients(self, server: str, users: Collection[UUID]) -> None:
        """Have the recipient policy applied to these users now: Update-Recipient (2007+);
        on 2000/2003 raises :class:`ManualActionRequired` (the Recipient Update Service's
        "Update Now" in Exchange System Manager)."""
        ...

    def reconnect_problems(
        self, server: str, mailboxes: Collection[UUID], stores: Mapping[UUID, str] | None = None
    ) -> dict[UUID, str]:
        """What would stop each of these disconnected mailboxes on ``server`` from being
        connected again, as the server itself says (Exchange 2007+: Connect-Mailbox
        -ValidateOnly); a mailbox left out has no problem. Exchange 2000/2003 have no such check:
        empty."""
        ...

    def mail_export_refusal(
        self, server: str, mailboxes: Collection[MailboxInfo] = ()
    ) -> str | None:
        """Why ``server`` cannot export or import mail, or the mail of these ``mailboxes`` (what
        ``export_mail`` and ``import_mail`` would refuse with, naming the server or the mailbox
        and what to do instead); None: it can. Without mailboxes, a capability of the server;
        with them, also what the server's export tool cannot be given (a legacyExchangeDN that is
        not one safe line of ExMerge's mailbox list): either way the plan shows it up front."""
        ...

    def export_location(self, server: str) -> str:
        """Where ``export_mail`` puts this server's exports, for the operator who must find
        them again (rollback notes, the ticket): the directory and the machine that holds it,
        as the server's export tool writes there."""
        ...

    def exports(self, server: str, guids: Collection[UUID]) -> dict[UUID, ExportRef]:
        """Existing exports of these mailboxes made by this run, each with what shows it is
        complete: its item ids, or the export tool's evidence, and the imports made of it."""
        ...

    def export_mail(
        self, server: str, guids: Collection[UUID], stores: Mapping[UUID, str] | None = None
    ) -> dict[UUID, ExportRef]:
        """Export every item of these mailboxes (ExMerge / New-MailboxExportRequest)."""
        ...

    def import_mail(
        self,
        server: str,
        pairs: Sequence[tuple[UUID, ExportRef]],
        stores: Mapping[UUID, str] | None = None,
    ) -> None:
        """Import each export into the mailbox; where item ids are kept, items already present
        (same id) are skipped; real servers record what the import tool reported."""
        ...


EXCHANGE_READS = frozenset(
    {
        "servers",
        "stores",
        "mailboxes",
        "service_states",
        "mail_export_refusal",
        "exports",
        "export_location",
        "reconnect_problems",
        "running_dependents",
    }
)
EXCHANGE_CHANGES = frozenset(
    {
        "set_services",
        "run_cleanup_agent",
        "purge_mailboxes",
        "disable_mailboxes",
        "reconnect_mailboxes",
        "update_recipients",
        "export_mail",
        "import_mail",
    }
)


class World(Protocol):
    """What a run acts on: a directory, an Exchange organisation and a clock."""

    @property
    def directory(self) -> Directory: ...

    @property
    def exchange(self) -> Exchange: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def organisation(self) -> str:
        """A stable name for the lock: one run at a time per organisation."""
        ...

    def attach_run(self, run_dir: Path | None) -> None:
        """Tell the adapters where this run keeps its artifacts (mail exports); None: memory."""
        ...

    def rehearsal(self) -> World:
        """A fake copy of this world's current state, to rehearse a playbook on (the plan)."""
        ...
