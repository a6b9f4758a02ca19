"""Does an export hold everything a mailbox holds, and did an import bring it all back?

Where both sides list item ids (the fakes) the ids are compared. A real store and a PST have no
common item id (a PST's entry ids are not the mailbox's), so there the export tool's own
evidence decides: it finished successfully, skipped no item, copied at least what the store
counted before it started, the file is still the one it wrote, and the mailbox holds no more
(items, bytes) now than when it was exported.
"""

from __future__ import annotations

from collections.abc import Iterable

from remediate.engine.changes import JsonValue
from remediate.model import ExportEvidence, ExportRef, MailboxInfo


def where_exports_are(values: Iterable[JsonValue], key: str) -> tuple[str, ...]:
    """Each place named by ``value[key]`` of these changes' before or after values (an export's
    location, ``Exchange.export_location``), with how many mailboxes' exports are there."""
    places: dict[str, int] = {}
    for value in values:
        place = value.get(key) if isinstance(value, dict) else None
        if isinstance(place, str) and place:
            places[place] = places.get(place, 0) + 1
    return tuple(f"{count} mailbox(es): {place}" for place, count in places.items())


def evidence_problems(evidence: ExportEvidence) -> list[str]:
    """What keeps this export from counting as complete, in the tool's own terms."""
    found = []
    if not evidence.succeeded:
        found.append(f"{evidence.tool} reported {evidence.status!r}")
    if evidence.bad_items:
        found.append(f"{evidence.tool} skipped {evidence.bad_items} bad items")
    copied = evidence.exported_items
    expected = max(evidence.source_items, evidence.estimated_items or 0)
    if copied is not None and copied < expected:
        found.append(f"{evidence.tool} copied {copied} of {expected} items")
    if evidence.file_bytes_now is None:
        found.append("the export file is gone")
    elif evidence.file_bytes_now != evidence.file_bytes:
        found.append(
            f"the export file changed since ({evidence.file_bytes} bytes when "
            f"written, {evidence.file_bytes_now} now)"
        )
    return found


def _no_record(export: ExportRef) -> str:
    return f"the export {export.location} has no record of what the export tool reported"


def export_problems(export: ExportRef) -> list[str]:
    """What keeps ``export`` from counting as a complete export of its mailbox as it was (none
    where it lists its item ids: those are compared instead)."""
    if export.item_ids is not None:
        return []
    if export.evidence is None:
        return [_no_record(export)]
    return evidence_problems(export.evidence)


def export_gap(box: MailboxInfo, export: ExportRef | None) -> str | None:
    """Why ``export`` does not hold every item ``box`` holds now; None when it does."""
    if not box.item_count:
        return None
    if export is None:
        return f"{box.item_count} items and no export of them"
    if export.item_ids is not None and box.item_ids is not None:
        missing = len(set(box.item_ids) - set(export.item_ids))
        return f"{missing} of its {box.item_count} items are not in the export" if missing else None
    evidence = export.evidence
    if evidence is None:
        return _no_record(export)
    found = evidence_problems(evidence)
    if box.item_count > evidence.source_items:
        found.append(
            f"the mailbox holds {box.item_count} items, {evidence.source_items} when "
            "it was exported"
        )
    if (
        box.size_bytes is not None
        and evidence.source_bytes is not None
        and box.size_bytes > evidence.source_bytes
    ):
        found.append(
            f"the mailbox holds {box.size_bytes} bytes, {evidence.source_bytes} when "
            "it was exported"
        )
    return "; ".join(found) or None


def items_to_import(box: MailboxInfo, export: ExportRef) -> int:
    """How many of the export's items ``box`` still lacks (0: the import is done); without
    item ids, what the tool exported unless it reported a complete import into ``box``."""
    if export.item_ids is not None and box.item_ids is not None:
        present = set(box.item_ids)
        return sum(1 for item in export.item_ids if item not in present)
    if box.guid in export.imported_into:
        return 0
    evidence = export.evidence
    if evidence is None:
        return len(export.item_ids or ())
    return evidence.source_items if evidence.exported_items is None else evidence.exported_items
