"""Where the fake Exchange puts mail exports: one JSON file per export in the run directory, or
memory (rehearsals, and worlds not attached to a run). An export is keyed by server and mailbox:
exporting a mailbox again replaces its export."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import quote
from uuid import UUID

from remediate.model import MailItem

from .jsonfile import (
    At,
    as_object,
    check_depth,
    elements,
    read_json,
    text,
    uuid,
    write_json_files,
)
from .packed import PackedItems

EXPORT_FORMAT = "remediate.mail-export/1"
Export = tuple[str, tuple[MailItem, ...]]  # (location, items)
MailboxItems = tuple[UUID, Sequence[MailItem]]  # what one mailbox's export holds


def item_to_json(item: MailItem) -> dict[str, object]:
    return {"id": item.id, "folder": item.folder, "subject": item.subject, **item.extra}


def item_from_json(value: object, at: At) -> MailItem:
    """A mail item; keys other than id, folder and subject are kept in ``extra``."""
    data = as_object(value, at)
    extra = {key: field for key, field in data.items() if key not in ("id", "folder", "subject")}
    if extra:
        check_depth(extra, at)
    folder, subject = _shared(text(data, "folder", at)), _shared(text(data, "subject", at))
    if not extra:
        return MailItem(text(data, "id", at), folder, subject)
    return MailItem(text(data, "id", at), folder, subject, extra)


def _shared(value: str) -> str:
    """Folder names and subjects repeat across millions of items: keep one copy of each."""
    return sys.intern(value)


class MailSink(Protocol):
    def write(self, server: str, exports: Sequence[MailboxItems]) -> list[str]:
        """Store the export of each mailbox, all of them durably before returning; returns
        their locations, in order."""
        ...

    def read(self, server: str, mailbox: UUID) -> Export | None:
        """The export of ``mailbox`` made on ``server``, if there is one."""
        ...

    def to_memory(self) -> MemorySink:
        """A memory copy of every export (for a rehearsal)."""
        ...


class MemorySink:
    def __init__(self, exports: Iterable[tuple[str, UUID, Sequence[MailItem]]] = ()) -> None:
        self._exports = {(server, mailbox): _kept(items) for server, mailbox, items in exports}

    def write(self, server: str, exports: Sequence[MailboxItems]) -> list[str]:
        for mailbox, items in exports:
            self._exports[server, mailbox] = _kept(items)
        return [f"memory:{server}/{mailbox}" for mailbox, _ in exports]

    def read(self, server: str, mailbox: UUID) -> Export | None:
        items = self._exports.get((server, mailbox))
        return None if items is None else (f"memory:{server}/{mailbox}", tuple(items))

    def to_memory(self) -> MemorySink:
        return MemorySink(
            (server, mailbox, items) for (server, mailbox), items in self._exports.items()
        )


def _kept(items: Sequence[MailItem]) -> Sequence[MailItem]:
    """An immutable copy of ``items``: packed items are already, and stay packed."""
    return items if isinstance(items, PackedItems) else tuple(items)


class DirectorySink:
    """Exports as files ``<root>/<server>/<mailbox guid>.json``, each written atomically; a
    batch shares one fsync of its directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, server: str, mailbox: UUID) -> Path:
        return self.root / quote(server, safe="") / f"{mailbox}.json"

    def write(self, server: str, exports: Sequence[MailboxItems]) -> list[str]:
        written: list[str] = []

        def documents() -> Iterator[tuple[Path, object]]:
            # Each document is made as it is written: only the paths' text stays.
            for mailbox, items in exports:
                path = self._path(server, mailbox)
                written.append(str(path))
                yield (
                    path,
                    {
                        "format": EXPORT_FORMAT,
                        "server": server,
                        "mailbox": str(mailbox),
                        "items": [item_to_json(item) for item in items],
                    },
                )

        write_json_files(documents())
        return written

    def read(self, server: str, mailbox: UUID) -> Export | None:
        path = self._path(server, mailbox)
        if not path.exists():
            return None
        return str(path), _load(path)[2]

    def to_memory(self) -> MemorySink:
        return MemorySink(_load(path) for path in sorted(self.root.glob("*/*.json")))


def _load(path: Path) -> tuple[str, UUID, tuple[MailItem, ...]]:
    at = At(source=str(path))
    data = as_object(read_json(path), at)
    if data.get("format") != EXPORT_FORMAT:
        at.child("format").fail(f"expected {EXPORT_FORMAT!r}: this is not a mail export")
    items = tuple(item_from_json(value, where) for where, value in elements(data, "items", at))
    return text(data, "server", at), uuid(data, "mailbox", at), items
