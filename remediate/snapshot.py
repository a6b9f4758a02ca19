"""Read an organisation through the ports into a world file (``remediate.world/1``), so a
playbook can be rehearsed offline and give the same plan as against the organisation itself.

Only the ports are used, so the same code snapshots real servers (ldap3, WinRM) and fakes.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Sequence
from uuid import UUID

from remediate.engine.changes import JsonValue
from remediate.errors import PermanentError
from remediate.fakes.worldfile import FORMAT as WORLD_FORMAT
from remediate.hosts import same_host
from remediate.model import (
    DirectoryEntry,
    ExchangeServer,
    MailboxCopy,
    MailboxInfo,
    UserQuery,
    default_roles,
    iso,
)
from remediate.ports import Exchange, World
from remediate.recipient import server_legacy_dn

# The services the playbooks look at, beyond each version's transport services.
EXTRA_SERVICES = ("MSExchangeIS",)


def snapshot(
    world: World,
    *,
    base_dn: str | None = None,
    objects: Sequence[DirectoryEntry] | None = None,
) -> dict[str, JsonValue]:
    """The directory (users under ``base_dn``, or the whole domain, and what lies below them;
    or ``objects``, as already read from the writable DC) and the whole Exchange organisation,
    as the writable DC and each server report them."""
    clock = iso(world.clock.now())  # when the reads began (retries move it on)
    delays = world.directory.replication_delays()
    directory = _directory(world, base_dn, objects, delays)
    exchange = exchange_snapshot(world.exchange)
    _name_servers(directory, exchange)
    _add_catalogs(directory, exchange, delays)
    return {
        "format": WORLD_FORMAT,
        "clock": clock,
        "directory": directory,
        "exchange": exchange,
    }


def _name_servers(directory: dict[str, JsonValue], exchange: dict[str, JsonValue]) -> None:
    """Give each server the legacyExchangeDN its users' msExchHomeServerName name (else one
    built from its stores' DN): what a rehearsal's reconnect writes, as the server would."""
    homes: dict[str, Counter[str]] = {}
    for obj in _dicts(directory.get("objects")):
        attributes = obj.get("attributes")
        if isinstance(attributes, dict):
            store, home = attributes.get("homeMDB"), attributes.get("msExchHomeServerName")
            if isinstance(store, str) and isinstance(home, str):
                homes.setdefault(store.lower(), Counter())[home] += 1
    for server in _dicts(exchange.get("servers")):
        stores = [str(store.get("dn")) for store in _dicts(server.get("stores"))]
        seen: Counter[str] = Counter()
        for store in stores:
            seen.update(homes.get(store.lower(), Counter()))
        named = (
            seen.most_common(1)[0][0]
            if seen
            else next((dn for dn in map(server_legacy_dn, stores) if dn), None)
        )
        if named is not None:
            server["legacy_dn"] = named


def _add_catalogs(
    directory: dict[str, JsonValue], exchange: dict[str, JsonValue], delays: dict[str, float]
) -> None:
    """Each server reads users through its first global catalog: one of the domain's DCs, or
    one added as a partial replica (a GC of another domain, with its delay where the directory
    knows it), so the rehearsal's waits and cleanup agent look where the server does."""
    dcs = _dicts(directory.get("dcs"))
    for server in _dicts(exchange.get("servers")):
        catalogs = server.pop("global_catalogs", None)
        if not isinstance(catalogs, list) or not catalogs:
            continue
        reported = str(catalogs[0])
        name = same_host(reported, [str(dc.get("name")) for dc in dcs])
        if name is None:
            known = same_host(reported, delays)
            name = known or reported
            dcs.append(
                {
                    "name": name,
                    "replication_delay_s": delays.get(name, 0.0),
                    "partial_replica": True,
                }
            )
        server["global_catalog"] = name
    directory["dcs"] = list[JsonValue](dcs)


def _dicts(value: JsonValue) -> list[dict[str, JsonValue]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def exchange_snapshot(exchange: Exchange) -> dict[str, JsonValue]:
    """The world file's ``exchange`` member: every server, store, mailbox (item ids) and
    transport service, as the servers report them."""
    return {"servers": [_server(exchange, server) for server in exchange.servers()]}


def _directory(
    world: World,
    base_dn: str | None,
    objects: Sequence[DirectoryEntry] | None,
    delays: dict[str, float],
) -> dict[str, JsonValue]:
    directory = world.directory
    dc = directory.writable_dc()
    entries: dict[UUID, DirectoryEntry] = {}
    if objects is None:
        # The scope's own container too: a plan on the snapshot checks that its OU exists.
        container = directory.lookup(base_dn, dc) if base_dn else None
        if container is not None:
            entries[container.guid] = container
        users = directory.find_users(UserQuery(base_dn=base_dn), dc)
        below = directory.descendants([user.guid for user in users], dc)
        entries.update((user.guid, user) for user in users)
        for children in below.values():
            entries.update((child.guid, child) for child in children)
    else:
        entries.update((entry.guid, entry) for entry in objects)
    return {
        "domain": directory.domain,
        "base_dn": directory.base_dn,
        "writable_dc": dc,
        "dcs": [
            {"name": name, "replication_delay_s": delays.get(name, 0.0)}
            for name in directory.domain_controllers()
        ],
        "objects": [_object(entry) for entry in entries.values()],
    }


def _object(entry: DirectoryEntry) -> dict[str, JsonValue]:
    attributes: dict[str, JsonValue] = {
        name: list(value) if isinstance(value, list) else value
        for name, value in entry.attributes.items()
    }
    return {
        "dn": entry.dn,
        "object_class": entry.object_class,
        "guid": str(entry.guid),
        "when_created": iso(entry.when_created),
        "when_changed": iso(entry.when_changed),
        "protected": entry.protected,
        "attributes": attributes,
        **(
            {
                "binary": {
                    name: [base64.b64encode(v).decode("ascii") for v in values]
                    for name, values in entry.binary.items()
                }
            }
            if entry.binary
            else {}
        ),
    }


def _server(exchange: Exchange, server: ExchangeServer) -> dict[str, JsonValue]:
    data = _server_state(exchange, server)
    # A real server that cannot export mail (Exchange 2007): the rehearsal refuses as it will.
    refusal = exchange.mail_export_refusal(server.name)
    if refusal is not None:
        data["mail_export_refusal"] = refusal
    # Where its exports go: the rehearsal's plan and rollback notes name them as apply will.
    data["export_location"] = exchange.export_location(server.name)
    return data


def _server_state(exchange: Exchange, server: ExchangeServer) -> dict[str, JsonValue]:
    boxes: dict[str, list[MailboxInfo]] = {}
    for box in exchange.mailboxes(server.name):
        boxes.setdefault(box.store_dn.lower(), []).append(box)
    stores: list[JsonValue] = [
        {
            "name": store.name,
            "storage_group": store.storage_group,
            "dn": store.dn,
            # A 2003 store is known to be a recovery storage group's by its mailboxes' rows.
            **(
                {"recovery": True}
                if store.recovery
                or any(box.copy is MailboxCopy.RECOVERY for box in boxes.get(store.dn.lower(), []))
                else {}
            ),
            "mailboxes": [_mailbox(box) for box in boxes.get(store.dn.lower(), [])],
        }
        for store in exchange.stores(server.name)
    ]
    services = _services(exchange, server.name, (*server.transport_services, *EXTRA_SERVICES))
    found: dict[str, JsonValue] = {
        "name": server.name,
        "version": server.version.value,
        "dc": server.dc,
        **(
            {"global_catalogs": list[JsonValue](server.global_catalogs)}
            if server.global_catalogs
            else {}
        ),
        "services": services,
        "stores": stores,
    }
    # What runs and depends on a transport service (Stop-Service -Force stops it too): the
    # rehearsal must know it to stop and start it as apply will.
    running = [name for name in server.transport_services if services.get(name) == "running"]
    dependents = {
        name: found_
        for name, found_ in (
            exchange.running_dependents(server.name, running) if running else {}
        ).items()
        if found_
    }
    if dependents:
        for name in (d for names in dependents.values() for d in names):
            services[name] = "running"
        found["dependents"] = {name: list[JsonValue](names) for name, names in dependents.items()}
    if server.roles != default_roles(server.version):
        found["roles"] = list[JsonValue](sorted(server.roles))
    if server.site:
        found["site"] = server.site
    return found


def _mailbox(box: MailboxInfo) -> dict[str, JsonValue]:
    # Folders and subjects stay on the server. A real store reports a count, not ids: the
    # rehearsal gets as many stand-ins, named after the mailbox so none repeats.
    ids = (
        box.item_ids
        if box.item_ids is not None
        else tuple(f"{box.guid}/{n}" for n in range(box.item_count))
    )
    data: dict[str, JsonValue] = {
        "guid": str(box.guid),
        "legacy_dn": box.legacy_dn,
        "display_name": box.display_name,
        "disconnected_at": iso(box.disconnected_at) if box.disconnected_at else None,
    }
    if box.copy is MailboxCopy.SOFT_DELETED:
        data["soft_deleted"] = True
    # What kb278447 weighs besides the items (an offline plan must see the same evidence).
    for key, moment in (("created_at", box.created_at), ("last_logon_at", box.last_logon_at)):
        if moment is not None:
            data[key] = iso(moment)
    data["items"] = [{"id": item, "folder": "", "subject": ""} for item in ids]
    return data


def _services(exchange: Exchange, server: str, names: Sequence[str]) -> dict[str, JsonValue]:
    """Each service the server has, in one call; where one is missing (refused), asked one by
    one so the others are still recorded."""
    try:
        return {name: state.value for name, state in exchange.service_states(server, names).items()}
    except PermanentError:
        pass
    states: dict[str, JsonValue] = {}
    for name in names:
        try:
            found = exchange.service_states(server, [name])
        except PermanentError:
            continue
        if name in found:
            states[name] = found[name].value
    return states
