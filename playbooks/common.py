"""Discovery helpers both playbooks use: where each mailbox lives, what each server is."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from remediate.engine.changes import Finding, JsonValue
from remediate.engine.concurrent_reads import read_each
from remediate.model import ExchangeServer, ExchangeVersion, MailboxCopy, MailboxInfo
from remediate.ports import World
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
        return {
            "name": self.name,
            "version": self.version.value,
            "dc": self.dc,
            "dcs": list(self.dcs),
            "catalogs": list(self.catalogs),
        }

    @staticmethod
    def from_json(data: dict[str, JsonValue]) -> ServerInfo:
        # A selection saved before servers reported their DCs has neither list.
        return ServerInfo(
            str(data["name"]),
            ExchangeVersion(str(data["version"])),
            str(data["dc"]),
            tuple(str(dc) for dc in as_list(data.get("dcs") or [])),
            tuple(str(gc) for gc in as_list(data.get("catalogs") or [])),
        )

    @staticmethod
    def of(server: ExchangeServer) -> ServerInfo:
        return ServerInfo(
            server.name,
            server.version,
            server.dc,
            server.domain_controllers,
            server.global_catalogs,
        )

    @property
    def use(self) -> DirectoryUse:
        return DirectoryUse(self.name, self.dcs or (self.dc,), self.catalogs)


# A recovery or soft-deleted copy sharing a mailbox's GUID: reported, never acted on.
COPY_LEFT_ALONE = "mailbox-copy-left-alone"


def locate_mailboxes(
    world: World, servers: Sequence[ExchangeServer], guids: Collection[UUID]
) -> tuple[dict[UUID, MailboxInfo], list[MailboxInfo]]:
    """Find these mailboxes on any server (one call per server, the servers read
    concurrently): the mailboxes themselves by GUID (a mailbox two servers report is the first
    server's), and the recovery and soft-deleted copies that share their GUIDs."""
    found: dict[UUID, MailboxInfo] = {}
    copies: list[MailboxInfo] = []
    if not guids:
        return found, copies
    for boxes in read_each(
        world.clock, servers, lambda server: world.exchange.mailboxes(server.name, guids)
    ):
        for box in boxes:
            if box.live:
                found.setdefault(box.guid, box)
            else:
                copies.append(box)
    return found, copies


def copies_left_alone(copies: Iterable[MailboxInfo], guids: Collection[UUID]) -> list[Finding]:
    """What the operator is told about each copy of these mailboxes that the run leaves alone
    (a recovery copy is never delivered to and cannot be reconnected; a soft-deleted one is a
    move's leftover, read only by New-MailboxRestoreRequest)."""
    wanted = set(guids)
    return [
        Finding(
            COPY_LEFT_ALONE,
            f"{box.server} {box.store_dn}",
            f"mailbox {box.guid} ({box.display_name}, {box.item_count} items) is also in "
            f"this store as a {box.copy.value} copy; the run acts only on the mailbox itself "
            f"and leaves this copy as it is: {_COPY_ADVICE[box.copy]}",
        )
        for box in copies
        if box.guid in wanted and not box.live
    ]


_COPY_ADVICE = {
    MailboxCopy.RECOVERY: "remove the recovery storage group or recovery database when its "
    "restore is finished",
    MailboxCopy.SOFT_DELETED: "Exchange purges it when the database's deleted mailbox "
    "retention ends (or Remove-StoreMailbox -MailboxState SoftDeleted)",
    MailboxCopy.LIVE: "",
}


def store_names(world: World, servers: Sequence[ExchangeServer]) -> dict[str, str]:
    """Store DN (lower-cased) -> store name, for people."""
    return {
        store.dn.lower(): store.name
        for stores in read_each(
            world.clock, servers, lambda server: world.exchange.stores(server.name)
        )
        for store in stores
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
