"""The things steps act on. ``key`` is stable across runs; ``endpoint`` batches them."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

DIRECTORY_ENDPOINT = "directory"


def exchange_endpoint(server: str) -> str:
    return f"exchange:{server}"


@dataclass(frozen=True, slots=True)
class UserTarget:
    guid: UUID
    dn: str
    sam: str

    @property
    def key(self) -> str:
        return f"user:{self.guid}"

    @property
    def label(self) -> str:
        return self.dn

    @property
    def endpoint(self) -> str:
        return DIRECTORY_ENDPOINT


@dataclass(frozen=True, slots=True)
class MailboxTarget:
    server: str
    store_dn: str
    guid: UUID
    owner: str  # who it belongs to, for people (a DN or sAMAccountName)

    @property
    def key(self) -> str:
        return f"mailbox:{self.server}/{self.guid}"

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

    @property
    def key(self) -> str:
        suffix = "#reassociate" if self.reassociate else ""
        return f"store:{self.server}/{self.store_dn}{suffix}"

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

    @property
    def key(self) -> str:
        return f"service:{self.server}/{self.service}"

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

    @property
    def rehomed_in_ad(self) -> bool:
        """Exchange 2000 has no Reconnect API: the user is re-homed in AD (MBConn's way)."""
        return self.version == "2000"

    @property
    def key(self) -> str:
        return f"reconnect:{self.server}/{self.mailbox}"

    @property
    def label(self) -> str:
        return f"{self.server} mailbox {self.mailbox} -> {self.user_dn}"

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

    @property
    def key(self) -> str:
        return f"import:{self.server}/{self.source}->{self.mailbox}"

    @property
    def label(self) -> str:
        return f"{self.server} items of {self.source} -> mailbox {self.mailbox} ({self.owner})"

    @property
    def endpoint(self) -> str:
        return exchange_endpoint(self.server)
