"""Implements ``remediate.ports.ExchangeCatalog`` over a fake world, as the LDAP adapter reads
it from AD: owners on the global catalog of the pinned DC (the fake forest is one domain, so its
global catalog is that DC's view), stores as the configuration naming context lists them (the
fake keeps them with its Exchange servers), users as the pinned DC sees them."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from remediate.model import DirectoryEntry, Store

from .directory import FakeDirectory
from .exchange import FakeExchange


class FakeCatalog:
    """The catalog of one fake world (its directory and its Exchange organisation)."""

    def __init__(self, directory: FakeDirectory, exchange: FakeExchange) -> None:
        self._directory = directory
        self._exchange = exchange

    def mailbox_owners(
        self, mailbox_guids: Collection[UUID]
    ) -> dict[UUID, list[tuple[UUID, str]]]:
        view = self._directory.view(self._directory.writable, "exchange.owners")
        found: dict[UUID, list[tuple[UUID, str]]] = {}
        for mailbox in mailbox_guids:
            owner = view.mailbox_owner(mailbox)
            entry = None if owner is None else view.live(owner)
            found[mailbox] = [] if entry is None else [(entry.guid, entry.dn)]
        return found

    def mailbox_stores(self, server: str) -> list[Store]:
        return list(self._exchange.stores(server))

    def recipients(self, guids: Collection[UUID]) -> dict[UUID, DirectoryEntry]:
        return self._directory.read(guids, self._directory.writable)
