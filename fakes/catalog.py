r"""Implements ``remediate.ports.ExchangeCatalog`` over a fake world, as the LDAP adapter reads
it from AD: owners on the global catalog of the pinned DC (the fake forest is one domain, so its
global catalog is that DC's view), stores as the configuration naming context lists them (the
fake keeps them with its Exchange servers), users as the pinned DC sees them.

Extended rights: a fake store grants every right to every account (an organisation set up as
KB292509 advises, through a security group) except those a test ``withhold``\ s; on a real
Exchange 2003 store the built-in administrators inherit a Deny of Send As and Receive As."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from remediate.dn import normalize
from remediate.model import DirectoryEntry, Store

from .directory import FakeDirectory
from .exchange import FakeExchange


class FakeCatalog:
    """The catalog of one fake world (its directory and its Exchange organisation)."""

    def __init__(self, directory: FakeDirectory, exchange: FakeExchange) -> None:
        self._directory = directory
        self._exchange = exchange
        self._withheld: dict[tuple[str, str], set[UUID]] = {}

    def withhold(self, dn: str, account: str, rights: Collection[UUID]) -> None:
        """Deny ``account`` these extended rights on the object ``dn`` from now on."""
        self._withheld.setdefault((normalize(dn), account.casefold()), set()).update(rights)

    def extended_rights(self, dn: str, account: str, rights: Collection[UUID]) -> set[UUID]:
        withheld = self._withheld.get((normalize(dn), account.casefold()), set())
        return {right for right in rights if right not in withheld}

    def mailbox_owners(self, mailbox_guids: Collection[UUID]) -> dict[UUID, list[tuple[UUID, str]]]:
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
