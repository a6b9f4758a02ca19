"""Discovery helpers both playbooks use: where each mailbox lives, what each server is."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from uuid import UUID

from remediate.engine.changes import JsonValue
from remediate.engine.concurrent_reads import read_each
from remediate.model import ExchangeServer, ExchangeVersion, MailboxInfo
from remediate.ports import World


@dataclass(frozen=True, slots=True)
class ServerInfo:
    name: str
    version: ExchangeVersion
    dc: str

    def to_json(self) -> dict[str, JsonValue]:
        return {"name": self.name, "version": self.version.value, "dc": self.dc}

    @staticmethod
    def from_json(data: dict[str, JsonValue]) -> ServerInfo:
        return ServerInfo(str(data["name"]), ExchangeVersion(str(data["version"])), str(data["dc"]))

    @staticmethod
    def of(server: ExchangeServer) -> ServerInfo:
        return ServerInfo(server.name, server.version, server.dc)


def locate_mailboxes(
    world: World, servers: Sequence[ExchangeServer], guids: Collection[UUID]
) -> dict[UUID, MailboxInfo]:
    """Find these mailboxes on any server: one call per server, the servers read concurrently;
    a mailbox two servers report is the first server's."""
    found: dict[UUID, MailboxInfo] = {}
    if not guids:
        return found
    for boxes in read_each(world.clock, servers,
                           lambda server: world.exchange.mailboxes(server.name, guids)):
        for box in boxes:
            found.setdefault(box.guid, box)
    return found


def store_names(world: World, servers: Sequence[ExchangeServer]) -> dict[str, str]:
    """Store DN (lower-cased) -> store name, for people."""
    return {store.dn.lower(): store.name
            for stores in read_each(world.clock, servers,
                                    lambda server: world.exchange.stores(server.name))
            for store in stores}


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
