"""Small fake worlds for the fakes' own tests: two DCs, one OU, one Exchange server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from remediate.dn import escape_rdn_value
from remediate.fakes import FakeWorld
from remediate.model import DirectoryEntry, ExchangeVersion, MailItem

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
BASE_DN = "DC=corp,DC=example"
OU = f"OU=Migrated,{BASE_DN}"
STORE_DN = (
    "CN=Mailbox Store (EXCH01),CN=First Storage Group,CN=InformationStore,CN=EXCH01,CN=Servers,"
    "CN=First Administrative Group,CN=Administrative Groups,CN=Corp,CN=Microsoft Exchange,"
    f"CN=Services,CN=Configuration,{BASE_DN}"
)


@dataclass(frozen=True)
class User:
    entry: DirectoryEntry
    mailbox: UUID | None
    legacy_dn: str

    @property
    def guid(self) -> UUID:
        return self.entry.guid


def new_world(
    *,
    dcs: Sequence[tuple[str, float]] = (("DC1", 0), ("DC2", 900)),
    version: ExchangeVersion = ExchangeVersion.E2003,
    server_dc: str = "DC2",
    writable_dc: str | None = None,
    cleanup_interval_s: float = 86400,
) -> FakeWorld:
    world = FakeWorld.create(
        domain="corp.example", base_dn=BASE_DN, dcs=dcs, now=START, writable_dc=writable_dc
    )
    world.directory.add_object(OU, object_class="organizationalUnit")
    world.exchange.add_server("EXCH01", version, server_dc, cleanup_interval_s=cleanup_interval_s)
    world.exchange.add_store("EXCH01", "Mailbox Store (EXCH01)", "First Storage Group", STORE_DN)
    return world


def add_user(
    world: FakeWorld,
    name: str,
    *,
    mailbox: bool = True,
    items: int = 0,
    parent: str = OU,
    protected: bool = False,
    created: datetime | None = None,
) -> User:
    """A user (mail-enabled, with a mailbox holding ``items`` items, unless ``mailbox`` is off)."""
    sam = "".join(ch for ch in name.lower() if ch.isalnum())[:20] or "user"
    legacy_dn = f"/o=Corp/ou=First Administrative Group/cn=Recipients/cn={sam}"
    attributes: dict[str, str | list[str]] = {"sAMAccountName": sam, "displayName": name}
    box = uuid4() if mailbox else None
    if box is not None:
        attributes |= {
            "mailNickname": sam,
            "legacyExchangeDN": legacy_dn,
            "homeMDB": STORE_DN,
            "msExchHomeServerName": world.exchange.default_legacy_dn("EXCH01"),
            "msExchMailboxGuid": str(box),
        }
        mail = [MailItem(f"{sam}-{n}", "Inbox", f"message {n}") for n in range(items)]
        world.exchange.add_mailbox(STORE_DN, box, legacy_dn, name, items=mail)
    entry = world.directory.add_object(
        f"CN={escape_rdn_value(name)},{parent}",
        attributes=attributes,
        protected=protected,
        when_created=created,
    )
    return User(entry, box, legacy_dn)
