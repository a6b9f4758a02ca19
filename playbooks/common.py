"""Discovery helpers both playbooks use: where each mailbox lives, what each server is."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from uuid import UUID

from remediate.engine.changes import JsonValue
from remediate.model import ExchangeServer, ExchangeVersion, MailboxInfo
from remediate.ports import Exchange
from remediate.steps.replication import DirectoryUse


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """A server as the selection keeps it; ``dcs`` and ``catalogs``: the DCs and global catalogs
    its store reads AD through (what the replication waits also watch)."""

    name: str
    version: ExchangeVersion
    dc: str
    dcs: tuple[str, ...] = ()
    catalogs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, JsonValue]:
        return {"name": self.name, "version": self.version.value, "dc": self.dc,
                "dcs": list(self.dcs), "catalogs": list(self.catalogs)}

    @staticmethod
    def from_json(data: dict[str, JsonValue]) -> ServerInfo:
        # A selection saved before servers reported their DCs has neither list.
        return ServerInfo(str(data["name"]), ExchangeVersion(str(data["version"])), str(data["dc"]),
                          tuple(str(dc) for dc in as_list(data.get("dcs") or [])),
                          tuple(str(gc) for gc in as_list(data.get("catalogs") or [])))

    @staticmethod
    def of(server: ExchangeServer) -> ServerInfo:
        return ServerInfo(server.name, server.version, server.dc,
                          server.domain_controllers, server.global_catalogs)

    @property
    def use(self) -> DirectoryUse:
        return DirectoryUse(self.name, self.dcs or (self.dc,), self.catalogs)


def locate_mailboxes(
    exchange: Exchange, servers: Iterable[ExchangeServer], guids: Collection[UUID]
) -> dict[UUID, MailboxInfo]:
    """Find these mailboxes on any server: one call per server."""
    found: dict[UUID, MailboxInfo] = {}
    if not guids:
        return found
    for server in servers:
        for box in exchange.mailboxes(server.name, guids):
            found.setdefault(box.guid, box)
    return found


def store_names(exchange: Exchange, servers: Iterable[ExchangeServer]) -> dict[str, str]:
    """Store DN (lower-cased) -> store name, for people."""
    return {
        store.dn.lower(): store.name for server in servers for store in exchange.stores(server.name)
    }


def as_dict(value: JsonValue) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        raise ValueError("expected an object")
    return value


def as_list(value: JsonValue) -> list[JsonValue]:
    if not isinstance(value, list):
        raise ValueError("expected a list")
    return value


def opt_uuid(value: JsonValue) -> UUID | None:
    return UUID(str(value)) if value else None
