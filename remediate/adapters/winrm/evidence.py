"""The records the export and import scripts leave beside each export (``<guid>.export.json``,
``<guid>.import.<target>.json``), read back into an ``ExportRef``.

A PST's entry ids are not the mailbox's, so a real export cannot be checked item by item; what
the export tool reported when it finished (ExMerge's log summary, the export request's
statistics), with the store's count and size of the mailbox just before, is the evidence."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from remediate.errors import PermanentError
from remediate.model import ExportEvidence, ExportRef

RECORD_FORMAT = "remediate.mail-evidence/1"


class _Unreadable(Exception):
    pass


def _record(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise _Unreadable(f"not JSON ({error})") from None
    if not isinstance(value, dict) or value.get("format") != RECORD_FORMAT:
        raise _Unreadable(f"not a {RECORD_FORMAT} record")
    return value


def _count(record: Mapping[str, Any], name: str, *, optional: bool = False) -> int | None:
    value = record.get(name)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Unreadable(f"{name} is {value!r}, not a count")
    return value


def _evidence(record: Mapping[str, Any], file_bytes_now: int | None) -> ExportEvidence:
    return ExportEvidence(
        tool=str(record.get("tool")),
        status=str(record.get("status")),
        succeeded=record.get("succeeded") is True,
        source_items=_count(record, "source_items") or 0,
        source_bytes=_count(record, "source_bytes", optional=True),
        exported_items=_count(record, "exported_items", optional=True),
        estimated_items=_count(record, "estimated_items", optional=True),
        bad_items=_count(record, "bad_items") or 0,
        file_bytes=_count(record, "file_bytes", optional=True) or 0,
        file_bytes_now=file_bytes_now,
        finished_at=str(record.get("finished_at")),
    )


def _imported_into(texts: list[Any]) -> tuple[UUID, ...]:
    """The mailboxes a complete import of this export went into, per the import tool."""
    done = []
    for text in texts:
        record = _record(str(text))
        if record.get("succeeded") is True and not _count(record, "bad_items"):
            done.append(UUID(str(record.get("mailbox"))))
    return tuple(done)


def export_ref(server: str, guid: UUID, row: Mapping[str, Any], operation: str) -> ExportRef:
    """One export as the ``exports``/``export`` scripts report it."""
    location = str(row["location"])
    now = row.get("file_bytes_now")
    size_now = now if isinstance(now, int) else None
    try:
        evidence = None
        if row.get("evidence") is not None:
            evidence = _evidence(_record(str(row["evidence"])), size_now)
        imported = _imported_into(list(row.get("imports") or ()))
    except (_Unreadable, ValueError) as error:
        raise PermanentError(
            f"the record beside the export {location} of mailbox {guid} is unreadable: {error}",
            endpoint=server,
            operation=f"exchange.{operation}",
            target=str(guid),
            hint="move the export and its records aside and export the mailbox again",
        ) from None
    return ExportRef(server, guid, location, None, evidence, imported)
