"""The things steps act on. ``key`` is stable across runs; ``endpoint`` batches them.

``key`` is made once per target: the engine looks it up several times per target and step, and
formatting a GUID each time was a large part of the engine's own time (docs/PERFORMANCE.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from uuid import UUID

from remediate.model import ExchangeVersion

DIRECTORY_ENDPOINT = "directory"

# How to reconnect a mailbox by hand, on every version (rollback texts share it).
RECONNECT_BY_HAND = (
    "Exchange System Manager: Mailboxes > right-click the disconnected mailbox > Reconnect, or "
    "MBConn, on 2000/2003; `Connect-Mailbox` on 2007 and later"
)


@cache  # one string per server, shared by its (up to hundreds of thousands of) targets
def exchange_endpoint(server: str) -> str:
    return f"exchange:{server}"


@dataclass(frozen=True, slots=True)
class UserTarget:
    guid: UUID
    dn: str
    sam: str

    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"user:{self.guid}")

    @property
    def label(self) -> str:
        return self.dn

    @property
    def endpoint(self) -> str:
        return DIRECTORY_ENDPOINT


class ForUser:
    """A target that stands for ``user`` in a step that reaches him some other way (on an
    Exchange server, with more to know): his key and label, so records name him as usual."""

    __slots__ = ()
    user: UserTarget

    @property
    def key(self) -> str:
        return self.user.key

    @property
    def label(self) -> str:
        return self.user.label


@dataclass(frozen=True, slots=True)
class UserOnServer(ForUser):
    """A user, checked on the Exchange server his mailbox is (was) on, in that server's batch;
    without a server (no mailbox), on the directory."""

    user: UserTarget
    server: str | None

    @property
    def endpoint(self) -> str:
        return self.user.endpoint if self.server is None else exchange_endpoint(self.server)


@dataclass(frozen=True, slots=True)
class UserKeyedTarget(ForUser):
    """A step's work on one user, whose mailbox is on ``server``: keyed, labelled and (unless a
    subclass says otherwise) batched as the user, so that a step acts once per user."""

    user: UserTarget
    server: str
    version: ExchangeVersion

    @property
    def endpoint(self) -> str:
        return self.user.endpoint


@dataclass(frozen=True, slots=True)
class MailboxTarget:
    server: str
    store_dn: str
    guid: UUID
    owner: str  # who it belongs to, for people (a DN or sAMAccountName)

    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"mailbox:{self.server}/{self.guid}")

    @property
    def label(self) -> str:
        return f"{self.server} mailbox {self.guid} ({self.owner})"

    @property
    def endpoint(self) -> str:
        return exchange_endpoint(self.server)


@dataclass(frozen=True, slots=True)
class StoreTarget:
    """A mailbox store and the mailboxes in it that a step cares about."""

    server: str
    store_dn: str
    store_name: str
    mailboxes: tuple[UUID, ...]
    reassociate: bool = False  # want them connected again (after an Exchange 2000 re-home)

    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        suffix = "#reassociate" if self.reassociate else ""
        object.__setattr__(self, "key", f"store:{self.server}/{self.store_dn}{suffix}")

    @property
    def label(self) -> str:
        return f"{self.server} {self.store_name}"

    @property
    def endpoint(self) -> str:
        return exchange_endpoint(self.server)


@dataclass(frozen=True, slots=True)
class ServiceTarget:
    server: str
    service: str

    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"service:{self.server}/{self.service}")

    @property
    def label(self) -> str:
        return f"{self.server} service {self.service}"

    @property
    def endpoint(self) -> str:
        return exchange_endpoint(self.server)


@dataclass(frozen=True, slots=True)
class ReconnectTarget:
    """Connect ``mailbox`` on ``server`` to ``user``."""

    server: str
    version: str
    store_dn: str
    mailbox: UUID
    user: UUID
    user_dn: str
    home_server: str  # the server's legacy DN, written as msExchHomeServerName on Exchange 2000
    # For the approver: both mailboxes and the user by name, size and date, and what decided
    # the pairing (a wrong pairing is caught here or not at all).
    evidence: str = ""

    @property
    def rehomed_in_ad(self) -> bool:
        """Exchange 2000 has no Reconnect API: the user is re-homed in AD (MBConn's way)."""
        return self.version == "2000"

    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"reconnect:{self.server}/{self.mailbox}")

    @property
    def label(self) -> str:
        text = f"{self.server} mailbox {self.mailbox} -> {self.user_dn}"
        return f"{text} ({self.evidence})" if self.evidence else text

    @property
    def endpoint(self) -> str:
        return exchange_endpoint(self.server)


@dataclass(frozen=True, slots=True)
class ImportTarget:
    """Import the export of ``source`` (a mailbox on ``source_server``) into ``mailbox``."""

    server: str
    source_server: str
    source: UUID
    mailbox: UUID
    owner: str
    store_dn: str = ""  # the store ``mailbox`` is in ("": wherever the mailbox itself is)

    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"import:{self.server}/{self.source}->{self.mailbox}")

    @property
    def label(self) -> str:
        return f"{self.server} items of {self.source} -> mailbox {self.mailbox} ({self.owner})"

    @property
    def endpoint(self) -> str:
        return exchange_endpoint(self.server)
