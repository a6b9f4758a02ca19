"""Value types shared by the ports, the steps, the fakes and the real adapters."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from uuid import UUID

from remediate.dn import normalize

AttrValue = str | list[str]
# A value the Directory port can write: text, or the raw bytes of a binary attribute (a SID, a
# security descriptor) as AD holds them.
WriteValue = str | list[str] | bytes | list[bytes]

# Attributes AD holds as a 16-byte GUID that the port shows as the dashed string (objectGUID is
# the entry's ``guid``). LDIF writes them as their bytes; the LDAP adapter converts both ways.
GUID_ATTRIBUTES = frozenset({"msexchmailboxguid", "msexcharchiveguid"})
# Attributes of binary syntax a user carries (lower-case): kept as bytes even where the bytes
# happen to read as UTF-8 (a SID often does). Any other value that is not UTF-8 is kept as bytes
# too (DirectoryEntry.binary).
BINARY_ATTRIBUTES = frozenset(
    {
        "objectsid",
        "sidhistory",
        "msexchmasteraccountsid",
        "msexchmailboxsecuritydescriptor",
        "usercertificate",
        "usersmimecertificate",
        "thumbnailphoto",
        "logonhours",
        "msexchsafesendershash",
        "msexchblockedsendershash",
        "msexchsaferecipientshash",
        "msds-generationid",
        "terminalserver",
        "usercert",
    }
)

# Attributes that make a user mail-enabled (Exchange 2000/2003 "Exchange Tasks > Delete Mailbox"
# and Exchange 2007+ Disable-Mailbox clear these).
EXCHANGE_ATTRIBUTES: tuple[str, ...] = (
    "homeMDB",
    "homeMTA",
    "msExchHomeServerName",
    "mailNickname",
    "legacyExchangeDN",
    "msExchMailboxGuid",
    "proxyAddresses",
    "mail",
    "msExchMailboxSecurityDescriptor",
    "showInAddressBook",
)

# The user's recipient settings beyond the mailbox link: Exchange 2007+ Disable-Mailbox removes
# them with the rest ("Keep the user account, but remove the Exchange attributes from the
# account", Connect-Mailbox.md) and the email address policy does not give them back.
EXTENSION_ATTRIBUTES: tuple[str, ...] = tuple(f"extensionAttribute{n}" for n in range(1, 16))
RECIPIENT_SETTINGS: tuple[str, ...] = (
    "msExchHideFromAddressLists",
    "altRecipient",
    "deliverAndRedirect",
    "publicDelegates",
    "authOrig",
    "unauthOrig",
    "mDBUseDefaults",
    "mDBStorageQuota",
    "mDBOverQuotaLimit",
    "mDBOverHardQuotaLimit",
    "msExchPoliciesExcluded",
    *EXTENSION_ATTRIBUTES,
)
# What the mailbox type and the archive are made of (2007+); Connect-Mailbox sets them again
# with the matching parameter set (-Linked*, -Shared, -Room, -Equipment, -Archive).
MAILBOX_TYPE_ATTRIBUTES: tuple[str, ...] = (
    "msExchRecipientTypeDetails",
    "msExchRecipientDisplayType",
    "msExchMasterAccountSid",
    "msExchArchiveGUID",
    "msExchArchiveName",
)
# What Disable-Mailbox clears on Exchange 2007 and later.
DISABLE_MAILBOX_ATTRIBUTES: tuple[str, ...] = (
    *EXCHANGE_ATTRIBUTES,
    *RECIPIENT_SETTINGS,
    *MAILBOX_TYPE_ATTRIBUTES,
)


def utc(text: str) -> datetime:
    """Parse ISO 8601 (``Z`` allowed) into an aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    """Format an aware datetime as ISO 8601 UTC with a ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


NO_BINARY: Mapping[str, tuple[bytes, ...]] = MappingProxyType({})


@dataclass(slots=True)
class DirectoryEntry:
    """One AD object as one DC sees it."""

    guid: UUID
    dn: str
    object_class: str
    when_created: datetime
    when_changed: datetime
    usn_changed: int
    protected: bool = False
    attributes: dict[str, AttrValue] = field(default_factory=dict)
    deleted: bool = False
    # Values that are not text (SIDs, security descriptors, photos), as AD holds them; by
    # default one shared empty mapping (hundreds of thousands of entries have none).
    binary: Mapping[str, tuple[bytes, ...]] = field(default_factory=lambda: NO_BINARY)

    def get(self, name: str) -> str | None:
        """A single-valued attribute, case-insensitive by name (as LDAP is)."""
        value = self.attributes.get(name)
        if value is None:
            lowered = name.lower()
            for key, candidate in self.attributes.items():
                if key.lower() == lowered:
                    value = candidate
                    break
        if isinstance(value, list):
            return value[0] if value else None
        return value

    def get_binary(self, name: str) -> tuple[bytes, ...] | None:
        """A binary attribute's values, case-insensitive by name."""
        lowered = name.lower()
        return next((v for k, v in self.binary.items() if k.lower() == lowered), None)

    def holds(self, name: str) -> bool:
        """Whether the entry has a value for ``name``, text or binary."""
        return self.get(name) is not None or bool(self.get_binary(name))

    @property
    def mailbox_guid(self) -> UUID | None:
        raw = self.get("msExchMailboxGuid")
        return UUID(raw) if raw else None

    @property
    def sam_account_name(self) -> str:
        return self.get("sAMAccountName") or ""

    @property
    def mail_enabled(self) -> bool:
        return any(
            self.get(name) for name in ("homeMDB", "msExchHomeServerName", "msExchMailboxGuid")
        )


@dataclass(frozen=True, slots=True)
class UserQuery:
    """Which users to find. Every criterion given narrows the result (AND)."""

    base_dn: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    sam_account_names: frozenset[str] | None = None
    legacy_exchange_dns: frozenset[str] | None = None
    mail_enabled_only: bool = False


class ExchangeVersion(StrEnum):
    E2000 = "2000"
    E2003 = "2003"
    E2007 = "2007"
    E2010 = "2010"
    E2013 = "2013"
    E2016 = "2016"
    E2019 = "2019"
    SE = "SE"

    @property
    def legacy(self) -> bool:
        """Exchange 2000/2003: ESM, WMI, ExMerge, no management shell."""
        return self in (ExchangeVersion.E2000, ExchangeVersion.E2003)

    @property
    def transport_services(self) -> tuple[str, ...]:
        """The transport services of a server of this version with the default roles
        (``default_roles``); a server's own are ``ExchangeServer.transport_services``."""
        return transport_services(self, default_roles(self))

    @property
    def cleanup_agent_is_manual(self) -> bool:
        """No API triggers the 2000/2003 cleanup agent: the operator runs it from ESM."""
        return self.legacy


# ExMerge (Exchange 2000/2003) takes the mailboxes to export or import from a text file, one
# legacyExchangeDN per line, and its settings from an ini file. A value holding a line break (CR,
# LF, NEL, U+2028/9 and the other C0 controls) or a NUL (where C strings end) would be read as
# more than one entry, and a leading or trailing blank may be trimmed away as ini readers do:
# ExMerge could then act on a mailbox the plan does not name. The ExMerge scripts test every such
# value against this same pattern (Python's and .NET's regular expressions read it alike).
LINE_UNSAFE = r"[\x00-\x1F\x7F\x85\u2028\u2029]|^\s|\s$"
_LINE_UNSAFE = re.compile(LINE_UNSAFE)


def line_unsafe(value: str) -> bool:
    """Whether ``value`` cannot be written as one line of a line-oriented file (see above)."""
    return _LINE_UNSAFE.search(value) is not None


class MailboxKind(StrEnum):
    """A mailbox's type (``msExchRecipientTypeDetails``, Exchange 2007+); Connect-Mailbox has
    a parameter set for each."""

    USER = "user"
    LINKED = "linked"
    SHARED = "shared"
    ROOM = "room"
    EQUIPMENT = "equipment"

    @property
    def type_details(self) -> int:
        """Its ``msExchRecipientTypeDetails`` value."""
        return _TYPE_DETAILS[self]

    @staticmethod
    def of(type_details: str | None) -> MailboxKind:
        """The kind a ``msExchRecipientTypeDetails`` value names (absent or other: user)."""
        try:
            number = int(type_details or "1")
        except ValueError:
            return MailboxKind.USER
        return next((k for k, v in _TYPE_DETAILS.items() if v == number), MailboxKind.USER)


_TYPE_DETAILS = {
    MailboxKind.USER: 1,
    MailboxKind.LINKED: 2,
    MailboxKind.SHARED: 4,
    MailboxKind.ROOM: 16,
    MailboxKind.EQUIPMENT: 32,
}


@dataclass(frozen=True, slots=True)
class ConnectAs:
    """How Connect-Mailbox connects one mailbox (2007+): its parameter set, and whether to
    connect the user's archive too (``-Archive``, in the User set only)."""

    kind: MailboxKind = MailboxKind.USER
    archive: bool = False


class ServiceState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ExchangeServer:
    """A server as discovery read it. ``roles`` are its server roles as Get-ExchangeServer
    reports them (``ServerRole``: Mailbox, HubTransport, ClientAccess, ...), empty for the
    version's default (``default_roles``); ``site`` its Active Directory site (Exchange
    2007/2010: the Hub Transport servers of the site deliver into its databases).

    ``domain_controllers`` and ``global_catalogs``: the directory servers its DSAccess uses now
    (Exchange 2003: Exchange_DSAccessDC instances that are up, Type 1 and 2; 2007+:
    Get-ExchangeServer -Status, CurrentDomainControllers and CurrentGlobalCatalogs). Its store
    finds a mailbox's owner through them, so a change is seen by its cleanup agent only once
    they hold it. Empty: not reported (only ``dc`` is known)."""

    name: str
    version: ExchangeVersion
    dc: str
    roles: frozenset[str] = frozenset()
    site: str = ""
    domain_controllers: tuple[str, ...] = ()
    global_catalogs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.roles:
            object.__setattr__(self, "roles", default_roles(self.version))

    @property
    def transport_services(self) -> tuple[str, ...]:
        """The transport services installed on this server (its roles decide)."""
        return transport_services(self.version, self.roles)


MAILBOX, HUB_TRANSPORT, CLIENT_ACCESS = "Mailbox", "HubTransport", "ClientAccess"


def default_roles(version: ExchangeVersion) -> frozenset[str]:
    """The roles assumed where none are given: a typical single server of the version (2016
    and later have no separate Client Access role)."""
    if version.legacy or version in (
        ExchangeVersion.E2016,
        ExchangeVersion.E2019,
        ExchangeVersion.SE,
    ):
        return frozenset({MAILBOX})
    if version is ExchangeVersion.E2013:
        return frozenset({MAILBOX, CLIENT_ACCESS})
    return frozenset({MAILBOX, HUB_TRANSPORT, CLIENT_ACCESS})


def transport_services(version: ExchangeVersion, roles: frozenset[str]) -> tuple[str, ...]:
    """The transport services a server of this version with these roles has. Exchange
    2000/2003: the MTA Stacks and SMTP (IIS). 2007/2010: Microsoft Exchange Transport on Hub
    Transport servers only; a Mailbox-only server has none. 2013: Transport, Mailbox Transport
    Delivery and Submission on the Mailbox role, Front End Transport on Client Access. 2016 and
    later: all four on the Mailbox role (Exchange Server transport architecture documentation)."""
    if version.legacy:
        return ("MSExchangeMTA", "SMTPSVC")
    if version in (ExchangeVersion.E2007, ExchangeVersion.E2010):
        return ("MSExchangeTransport",) if HUB_TRANSPORT in roles else ()
    found: tuple[str, ...] = ()
    if MAILBOX in roles:
        found += ("MSExchangeTransport", "MSExchangeDelivery", "MSExchangeSubmission")
    if CLIENT_ACCESS in roles or (MAILBOX in roles and version is not ExchangeVersion.E2013):
        found += ("MSExchangeFrontEndTransport",)
    return found


@dataclass(frozen=True, slots=True)
class Store:
    """A mailbox store (2000/2003) or database (2007+). ``recovery``: a recovery storage group's
    store (2003) or a recovery database (2010+), which holds restored copies of other stores'
    mailboxes under their own GUIDs; mail is never delivered to it and no user is connected to
    it."""

    server: str
    name: str
    storage_group: str
    dn: str
    recovery: bool = False


# The name Exchange System Manager gives the one recovery storage group a 2003 server may have
# ("Recovery Storage Group", KB824126): WMI's Exchange_Mailbox names a mailbox's storage group
# only by name, so this is how a 2003 script tells a recovery copy from the live mailbox.
RECOVERY_STORAGE_GROUP = "Recovery Storage Group"


class MailboxCopy(StrEnum):
    """Which copy of a mailbox a store reports: a mailbox GUID is not unique on a server.

    ``live``: the mailbox itself (connected, or disconnected by Disable-Mailbox or the cleanup
    agent: DisconnectReason Disabled), the only one a repair may reconnect, export or purge.
    ``recovery``: a copy in a recovery storage group (2003, KB824126) or a recovery database
    (2010+, Get-MailboxStatistics -Server lists them): restored from a backup, never delivered
    to, and neither Reconnect() nor Connect-Mailbox applies to it. ``soft-deleted``: what a
    mailbox move leaves in its source database (DisconnectReason SoftDeleted, Remove-StoreMailbox
    and New-MailboxRestoreRequest documentation): Connect-Mailbox does not take it (a restore
    request reads it), and it is not the user's mailbox any more."""

    LIVE = "live"
    RECOVERY = "recovery"
    SOFT_DELETED = "soft-deleted"


_NO_EXTRA: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class MailItem:
    """One message. ``id`` survives export and import; ``extra`` keeps unknown fields (by
    default one shared empty mapping: millions of items each with a dict of their own would
    take 64 bytes apiece)."""

    id: str
    folder: str
    subject: str
    extra: Mapping[str, object] = field(default_factory=lambda: _NO_EXTRA)


def mailbox_key(store_dn: str, guid: UUID) -> tuple[str, UUID]:
    """The key of the mailbox ``guid`` in the store ``store_dn`` (equal DNs, equal keys)."""
    try:
        return normalize(store_dn), guid
    except ValueError:
        return store_dn.lower(), guid


@dataclass(frozen=True, slots=True)
class MailboxInfo:
    """A mailbox as its store reports it.

    ``owner`` is the user whose ``msExchMailboxGuid`` names this mailbox, as the server's own DC
    sees it (None: no user points at it). ``disconnected_at`` is the store's own mark
    (``DateDiscoveredAbsentInDS``), set by the cleanup agent.

    ``item_ids`` are the items' identities where the source can list them (the fakes); a real
    store reports only a count (``TotalItems``, ``ItemCount``) and a size, so there
    ``item_ids`` is None and ``counted_items`` holds the count.

    ``copy``: whether this is the mailbox itself or a recovery or soft-deleted copy of it
    (:class:`MailboxCopy`): the same GUID can be in several stores of one server, so a mailbox is
    named by its store and GUID (``key``).

    ``last_logon_at``: when someone last logged on to it (WMI ``Exchange_Mailbox.LastLogonTime``
    on 2003, ``Get-MailboxStatistics`` ``LastLogonTime`` on 2007+); None: never, or not
    reported. ``created_at``: when the store created it (first logon or delivery); no store
    reports this for a disconnected mailbox, so only world files and the fakes carry it.
    """

    guid: UUID
    server: str
    store_dn: str
    legacy_dn: str
    display_name: str
    disconnected_at: datetime | None
    item_ids: Sequence[str] | None
    owner: UUID | None
    counted_items: int | None = None
    size_bytes: int | None = None
    last_logon_at: datetime | None = None
    created_at: datetime | None = None
    copy: MailboxCopy = MailboxCopy.LIVE

    def __post_init__(self) -> None:
        if (self.item_ids is None) == (self.counted_items is None):
            raise ValueError(f"mailbox {self.guid}: give either its item ids or its item count")

    @property
    def key(self) -> tuple[str, UUID]:
        """(store DN, GUID): what names one mailbox on a server."""
        return mailbox_key(self.store_dn, self.guid)

    @property
    def live(self) -> bool:
        return self.copy is MailboxCopy.LIVE

    @property
    def item_count(self) -> int:
        if self.item_ids is not None:
            return len(self.item_ids)
        return self.counted_items or 0

    @property
    def disconnected(self) -> bool:
        return self.disconnected_at is not None


@dataclass(frozen=True, slots=True)
class ExportEvidence:
    """What the export tool itself reported when it finished (recorded beside the export file by
    the script that ran it), and what the file looks like now.

    ``source_items``/``source_bytes``: what the store reported for the mailbox just before the
    export started. ``exported_items`` and ``estimated_items`` (``ItemsTransferred``,
    ``EstimatedTransferItemCount``) are None where the tool does not count (ExMerge);
    ``bad_items`` are the items it skipped (``BadItemsEncountered``, ExMerge's non-fatal
    errors). ``file_bytes_now`` is None when the file is gone."""

    tool: str
    status: str
    succeeded: bool
    source_items: int
    source_bytes: int | None
    exported_items: int | None
    estimated_items: int | None
    bad_items: int
    file_bytes: int
    file_bytes_now: int | None
    finished_at: str


@dataclass(frozen=True, slots=True)
class ExportRef:
    """Where a mailbox's items were exported to, and what shows the export is complete: the ids
    of the items it holds where they can be listed (the fakes), else the tool's ``evidence``
    (real servers: a PST's entry ids are not the mailbox's). ``imported_into``: the mailboxes
    the import tool reported a complete import of this export into."""

    server: str
    mailbox: UUID
    location: str
    item_ids: Sequence[str] | None
    evidence: ExportEvidence | None = None
    imported_into: tuple[UUID, ...] = ()


def mailbox_list_refusal(
    server: str, version: ExchangeVersion, mailboxes: Iterable[MailboxInfo]
) -> str | None:
    """Why ExMerge on ``server`` must not be given these mailboxes (None: it may, or the server
    does not use ExMerge): a legacyExchangeDN that is not one safe line of its mailbox list."""
    if not version.legacy:
        return None
    for box in mailboxes:
        if line_unsafe(box.legacy_dn):
            return (
                f"mailbox {box.guid} on {server}: its legacyExchangeDN {box.legacy_dn!r} holds "
                "a line break, a NUL or another control character, or begins or ends with a "
                "blank, and ExMerge reads its mailboxes one legacyExchangeDN per line: it could "
                "act on a mailbox this run does not name. Correct the legacyExchangeDN (ADSI "
                "Edit) or leave this mailbox's user out of the run, then plan again"
            )
    return None
