"""The Exchange part of a world file (``remediate.world/1``) read from real servers: what a
rehearsal on fakes needs to know about them. Three WinRM commands per server (what the server
is, its services, its mailboxes).

Item identities are recorded; their folders and subjects are not read (left empty): a rehearsal
compares items by id only.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from remediate.model import MailboxInfo, iso

from .exchange import WinRmExchange


def _mailbox(box: MailboxInfo) -> dict[str, Any]:
    return {
        "guid": str(box.guid),
        "legacy_dn": box.legacy_dn,
        "display_name": box.display_name,
        "disconnected_at": iso(box.disconnected_at) if box.disconnected_at else None,
        "items": [{"id": item, "folder": "", "subject": ""} for item in box.item_ids],
    }


def exchange_snapshot(exchange: WinRmExchange) -> dict[str, Any]:
    """``{"servers": [...]}`` as the world file's ``exchange`` member holds it."""
    servers = []
    for server in exchange.servers():
        names = ("MSExchangeIS", *server.version.transport_services)
        states = exchange.service_states(server.name, names)
        by_store: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        for box in exchange.mailboxes(server.name):
            by_store[box.store_dn.lower()].append(_mailbox(box))
        stores = [
            {"name": store.name, "storage_group": store.storage_group, "dn": store.dn,
             "mailboxes": by_store.get(store.dn.lower(), [])}
            for store in exchange.stores(server.name)
        ]
        servers.append({
            "name": server.name,
            "version": server.version.value,
            "dc": server.dc,
            "services": {name: state.value for name, state in states.items()},
            "stores": stores,
        })
    return {"servers": servers}
