"""Fingerprints of what a plan was made against, so applying it hours later can tell, per target
and per attribute, what drifted in between."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from uuid import UUID

from remediate.engine.changes import JsonValue
from remediate.model import MailboxInfo, iso
from remediate.ports import World

# Bookkeeping that changes with any change: reported only when nothing else explains it.
_BOOKKEEPING = ("uSNChanged", "whenChanged")

Fingerprint = dict[str, JsonValue]


@dataclass(frozen=True, slots=True)
class Scope:
    """Everything a selection may touch, by kind."""

    objects: tuple[UUID, ...] = ()
    mailboxes: tuple[tuple[str, UUID], ...] = ()
    services: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Drift:
    target: str
    label: str  # the DN or mailbox, for people
    attribute: str
    planned: JsonValue
    current: JsonValue

    def __str__(self) -> str:
        return (
            f"{self.label} ({self.target}): {self.attribute} was {self.planned!r} when "
            f"planned, now {self.current!r}"
        )


def object_key(guid: UUID) -> str:
    return f"user:{guid}"


def mailbox_key(server: str, guid: UUID) -> str:
    return f"mailbox:{server}/{guid}"


def service_key(server: str, name: str) -> str:
    return f"service:{server}/{name}"


def fingerprints(world: World, scope: Scope) -> dict[str, Fingerprint]:
    """Read the scope's current state: one read for the objects (on the pinned DC), one call per
    server for mailboxes and one for services."""
    found: dict[str, Fingerprint] = {}
    found.update(_objects(world, scope.objects))
    found.update(_mailboxes(world, scope.mailboxes))
    found.update(_services(world, scope.services))
    return found


def _objects(world: World, guids: Collection[UUID]) -> dict[str, Fingerprint]:
    if not guids:
        return {}
    directory = world.directory
    entries = directory.read(guids, directory.writable_dc(), include_deleted=True)
    result: dict[str, Fingerprint] = {}
    for guid in guids:
        entry = entries.get(guid)
        if entry is None or entry.deleted:
            result[object_key(guid)] = {"exists": False}
            continue
        print_: Fingerprint = {
            "exists": True,
            "dn": entry.dn,
            "objectClass": entry.object_class,
            "whenCreated": iso(entry.when_created),
            "protected": entry.protected,
            "uSNChanged": entry.usn_changed,
            "whenChanged": iso(entry.when_changed),
        }
        # Every attribute, as AD's uSNChanged would also move for any of them: a change the
        # steps do not read still means someone touched the object after it was approved.
        for name in sorted(entry.attributes, key=str.lower):
            value = entry.attributes[name]
            print_[name] = list(value) if isinstance(value, list) else value
        result[object_key(guid)] = print_
    return result


def _mailboxes(world: World, boxes: Collection[tuple[str, UUID]]) -> dict[str, Fingerprint]:
    by_server: dict[str, list[UUID]] = {}
    for server, guid in boxes:
        by_server.setdefault(server, []).append(guid)
    result: dict[str, Fingerprint] = {}
    for server, guids in by_server.items():
        found = {box.guid: box for box in world.exchange.mailboxes(server, guids) if box.live}
        for guid in guids:
            box = found.get(guid)
            result[mailbox_key(server, guid)] = (
                {"exists": False} if box is None else _mailbox(server, box)
            )
    return result


def _mailbox(server: str, box: MailboxInfo) -> Fingerprint:
    print_: Fingerprint = {
        "exists": True,
        "label": f"{server} mailbox {box.display_name}",
        "legacy_dn": box.legacy_dn,
        "display_name": box.display_name,
        "state": "disconnected" if box.disconnected else "connected",
        "owner": str(box.owner) if box.owner else None,
        "items": box.item_count,
    }
    # Item ids where the store lists them (fakes); a real store's count and size otherwise.
    if box.item_ids is not None:
        print_["item_ids_sha256"] = hashlib.sha256(
            "\n".join(box.item_ids).encode("utf-8")
        ).hexdigest()
    if box.size_bytes is not None:
        print_["size_bytes"] = box.size_bytes
    return print_


def _services(world: World, services: Collection[tuple[str, str]]) -> dict[str, Fingerprint]:
    by_server: dict[str, list[str]] = {}
    for server, name in services:
        by_server.setdefault(server, []).append(name)
    result: dict[str, Fingerprint] = {}
    for server, names in by_server.items():
        states = world.exchange.service_states(server, names)
        for name in names:
            state = states.get(name)
            result[service_key(server, name)] = {"state": state.value if state else None}
    return result


def drifts(planned: Mapping[str, Fingerprint], current: Mapping[str, Fingerprint]) -> list[Drift]:
    """Every attribute that differs, named; uSNChanged alone when nothing read by the steps
    changed but something else on the object did."""
    found: list[Drift] = []
    for target, before in planned.items():
        after = current.get(target, {"exists": False})
        label = str(before.get("dn") or before.get("label") or target)
        differing = [
            name
            for name in sorted(set(before) | set(after), key=str.lower)
            if before.get(name) != after.get(name)
        ]
        named = [name for name in differing if name not in _BOOKKEEPING] or differing
        found.extend(
            Drift(target, label, name, before.get(name), after.get(name)) for name in named
        )
    return found
