"""The inventory (TOML): where the real organisation is, and the world made of it.

    [directory]              # Active Directory over ldap3 (remediate.adapters.ldap.config)
    ...
    [[exchange]]             # one table per Exchange server, over WinRM
    ...                      # (remediate.adapters.winrm.config)
    [safety]
    max_deletions = 500      # optional: the per-run deletion budget (--max-deletions wins)
    parallel = 8             # optional: Exchange servers worked on at a time (--parallel wins)
    lease_container = "CN=remediate,CN=Program Data,DC=corp,DC=example"
                             # optional: where runs take the organisation's lease
                             # (default: CN=Program Data,<base_dn>)

Secrets are never in the file: each section names an environment variable or asks at a prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from remediate.adapters.ldap.config import DirectoryConfig, parse_directory_table
from remediate.adapters.winrm.config import ServerConfig, parse_entry
from remediate.adapters.winrm.exchange import WinRmExchange, refuse_exchange_2000
from remediate.adapters.world import LiveWorld
from remediate.dn import normalize
from remediate.engine.parallel import checked_parallel
from remediate.errors import InputError
from remediate.fakes import world_from_json
from remediate.inventoryfile import read_inventory
from remediate.ports import World
from remediate.snapshot import snapshot

TOP_LEVEL = ("directory", "exchange", "safety")


@dataclass(frozen=True, slots=True)
class Inventory:
    source: Path
    directory: DirectoryConfig
    exchange: tuple[ServerConfig, ...]
    max_deletions: int | None
    parallel: int | None = None
    # Where every apply and resume takes the organisation's lease (remediate.engine.lease).
    lease_container: str = ""


def load_inventory(path: Path) -> Inventory:
    """Read and check an inventory; every error names the file, the key and what is expected."""
    document = read_inventory(path)
    unknown = sorted(set(document) - set(TOP_LEVEL))
    if unknown:
        raise InputError(
            f"unknown key {unknown[0]!r}",
            target=str(path),
            hint=f"the inventory has only: [{'], ['.join(TOP_LEVEL)}]",
        )
    table = document.get("directory")
    if not isinstance(table, dict):
        raise InputError(
            "no [directory] table",
            target=str(path),
            hint="add a [directory] table (see the README)",
        )
    entries = document.get("exchange", [])
    if not isinstance(entries, list):
        raise InputError("exchange: expected an array of tables: [[exchange]]", target=str(path))
    directory = parse_directory_table(table, path)
    safety = document.get("safety", {})
    return Inventory(
        source=path,
        directory=directory,
        exchange=tuple(parse_entry(entry, path, index) for index, entry in enumerate(entries)),
        max_deletions=_max_deletions(safety, path),
        parallel=_parallel(safety, path),
        lease_container=_lease_container(safety, path, directory.base_dn),
    )


def _max_deletions(table: object, path: Path) -> int | None:
    if not isinstance(table, dict):
        raise InputError("safety: expected a table: [safety]", target=str(path))
    unknown = sorted(set(table) - {"max_deletions", "parallel", "lease_container"})
    if unknown:
        raise InputError(
            f"[safety] {unknown[0]}: unknown key",
            target=str(path),
            hint="[safety] has only max_deletions, parallel and lease_container",
        )
    value = table.get("max_deletions")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError("[safety] max_deletions: expected a whole number >= 0", target=str(path))
    return value


def _parallel(table: dict[str, object], path: Path) -> int | None:
    value = table.get("parallel")
    if value is None:
        return None
    try:
        return checked_parallel(value, "[safety] parallel")
    except ValueError as error:
        raise InputError(str(error), target=str(path)) from None


def _lease_container(table: dict[str, object], path: Path, base_dn: str) -> str:
    """The container of the organisation's lease: AD's own CN=Program Data (every domain has
    it) unless the inventory names one (a container delegated to the account, best)."""
    value = table.get("lease_container", f"CN=Program Data,{base_dn}")
    problem = None if isinstance(value, str) and value.strip() else "expected a DN"
    if problem is None:
        try:
            normalize(str(value))
        except ValueError:
            problem = "is not a DN"
    if problem is not None:
        raise InputError(
            f"[safety] lease_container: {problem} ({value!r})",
            target=str(path),
            hint='name an existing container, e.g. "CN=remediate,CN=Program '
            'Data,DC=corp,DC=example", or leave it out for CN=Program Data',
        )
    return str(value)


def live_world(inventory: Inventory) -> LiveWorld:
    """Connect to the organisation the inventory describes. Plans are rehearsed on a snapshot
    of it read through the ports (the same reader as ``remediate snapshot``): of the directory,
    the objects discovery just read, brought up to date (see ``LdapDirectory.held_within``),
    or, when nothing was read, every user of the domain and what lies below them."""
    refuse_exchange_2000(inventory.exchange)  # before asking for any password
    directory = inventory.directory.connect()
    # Owners, stores and users are read through our own LDAP connection, not on the Exchange
    # servers (no double hop).
    exchange = WinRmExchange(list(inventory.exchange), catalog=directory)
    world: list[LiveWorld] = []

    def rehearse() -> World:
        held = directory.held_within(directory.base_dn)
        return world_from_json(
            snapshot(world[0], objects=held or None), source=f"snapshot of {inventory.source}"
        )

    world.append(LiveWorld(directory, exchange, rehearse=rehearse))
    return world[0]
