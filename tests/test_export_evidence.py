"""Export and import verification where item ids cannot be compared (real servers: a PST's entry
ids are not the mailbox's): the export tool's own evidence decides, and a purge is refused, with
the mailbox, server and what to do, whenever that evidence falls short."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID

import pytest

from remediate.engine.changes import NoOp, Planned, WouldFail
from remediate.model import ExportEvidence, ExportRef, MailboxInfo
from remediate.steps.coverage import export_gap, items_to_import
from remediate.steps.exchange import PurgeMailbox, PurgeObservation
from remediate.steps.mail import ExportMail, ExportObservation, ImportMail, ImportObservation
from remediate.steps.targets import ImportTarget, MailboxTarget

BOX, BLANK, USER = UUID(int=1), UUID(int=2), UUID(int=3)
T0 = datetime(2026, 11, 1, tzinfo=UTC)
COMPLETE = ExportEvidence(
    tool="New-MailboxExportRequest",
    status="Completed",
    succeeded=True,
    source_items=12,
    source_bytes=40_960,
    exported_items=14,
    estimated_items=14,
    bad_items=0,
    file_bytes=300_000,
    file_bytes_now=300_000,
    finished_at="2026-11-01T10:00:00Z",
)
EXMERGE = replace(
    COMPLETE,
    tool="ExMerge",
    exported_items=None,
    estimated_items=None,
    status="1 mailboxes successfully processed. 0 mailboxes were not "
    "successfully processed. 0 non-fatal errors encountered.",
)

WHERE = "`D:\\remediate\\exports` on EXCH01"


def counted(
    items: int = 12,
    size: int | None = 40_960,
    *,
    guid: UUID = BOX,
    owner: UUID | None = None,
    disconnected: bool = True,
) -> MailboxInfo:
    return MailboxInfo(
        guid,
        "EXCH01",
        "CN=Store",
        "/o=Corp/cn=jdoe",
        "Doe, John",
        T0 if disconnected else None,
        None,
        owner,
        counted_items=items,
        size_bytes=size,
    )


def export(evidence: ExportEvidence | None = COMPLETE, *, into: tuple[UUID, ...] = ()) -> ExportRef:
    return ExportRef("EXCH01", BLANK, r"\\fs01\pst$\b.pst", None, evidence, into)


@pytest.mark.parametrize("evidence", [COMPLETE, EXMERGE], ids=["request", "exmerge"])
def test_complete_evidence_covers_the_mailbox_as_it_was(evidence: ExportEvidence) -> None:
    assert export_gap(counted(), export(evidence)) is None
    assert export_gap(counted(items=11, size=30_000), export(evidence)) is None  # items deleted


@pytest.mark.parametrize(
    ("evidence", "box", "says"),
    [
        (None, counted(), "has no record of what the export tool reported"),
        (replace(COMPLETE, status="Failed", succeeded=False), counted(), "reported 'Failed'"),
        (
            replace(COMPLETE, status="CompletedWithWarning", succeeded=False),
            counted(),
            "reported 'CompletedWithWarning'",
        ),
        (replace(COMPLETE, bad_items=3), counted(), "skipped 3 bad items"),
        (replace(COMPLETE, exported_items=13), counted(), "copied 13 of 14 items"),
        (replace(COMPLETE, estimated_items=None, exported_items=11), counted(), "copied 11 of 12"),
        (replace(COMPLETE, file_bytes_now=None), counted(), "the export file is gone"),
        (replace(COMPLETE, file_bytes_now=1024), counted(), "changed since (300000 bytes"),
        (COMPLETE, counted(items=13), "holds 13 items, 12 when it was exported"),
        (EXMERGE, counted(size=41_984), "holds 41984 bytes, 40960 when it was exported"),
    ],
    ids=[
        "no-record",
        "failed",
        "warning",
        "bad-items",
        "short",
        "short-of-source",
        "gone",
        "changed",
        "new-item",
        "grew",
    ],
)
def test_evidence_that_falls_short_is_a_gap(
    evidence: ExportEvidence | None, box: MailboxInfo, says: str
) -> None:
    gap = export_gap(box, export(evidence))
    assert gap is not None and says in gap


def test_a_purge_without_complete_evidence_names_mailbox_server_and_what_to_do() -> None:
    target = MailboxTarget("EXCH01", "CN=Store", BOX, "jdoe")
    box = counted(items=13)
    change = PurgeMailbox([target]).plan(target, PurgeObservation(box, export_gap(box, export())))
    assert isinstance(change, WouldFail)
    for part in (
        "Doe, John",
        str(BOX),
        "EXCH01",
        "13 items, 12 when it was exported",
        "export it again",
        "New-MailboxRestoreRequest",
    ):
        assert part in change.reason
    fine = PurgeMailbox([target]).plan(target, PurgeObservation(counted(), None))
    assert isinstance(fine, Planned)


def test_an_export_with_complete_evidence_is_not_made_again() -> None:
    target = MailboxTarget("EXCH01", "CN=Store", BOX, "jdoe")
    step = ExportMail([target])
    assert isinstance(step.plan(target, ExportObservation(counted(), export())), NoOp)
    stale = step.plan(target, ExportObservation(counted(items=13), export(), None, WHERE))
    assert isinstance(stale, Planned) and stale.after == {"exported": 13, "to": WHERE}


def test_an_import_is_done_when_the_import_tool_reported_it_into_this_mailbox() -> None:
    target = ImportTarget("EXCH01", "EXCH01", BLANK, BOX, "jdoe")
    step = ImportMail([target])
    box = counted(items=30, owner=USER, disconnected=False)
    pending = step.plan(target, ImportObservation(box, export(), None, WHERE))
    assert isinstance(pending, Planned) and pending.after == {
        "items": 44,
        "imported": 14,
        "from": WHERE,
    }
    exmerge = step.plan(target, ImportObservation(box, export(EXMERGE), None, WHERE))
    assert isinstance(exmerge, Planned) and exmerge.after == {
        "items": 42,
        "imported": 12,
        "from": WHERE,
    }
    assert isinstance(step.plan(target, ImportObservation(box, export(into=(BOX,)))), NoOp)
    elsewhere = export(into=(BLANK,))
    assert items_to_import(box, elsewhere) == 14


def test_an_import_of_an_export_that_falls_short_would_fail() -> None:
    target = ImportTarget("EXCH01", "EXCH01", BLANK, BOX, "jdoe")
    box = counted(items=30, owner=USER, disconnected=False)
    gone = export(replace(COMPLETE, file_bytes_now=None))
    change = ImportMail([target]).plan(target, ImportObservation(box, gone))
    assert isinstance(change, WouldFail)
    assert "the export file is gone" in change.reason and str(BLANK) in change.reason


def test_item_ids_where_both_sides_list_them_still_decide() -> None:
    listed = MailboxInfo(
        BOX, "EXCH01", "CN=Store", "/o=Corp/cn=jdoe", "Doe, John", T0, ("a", "b"), None
    )
    holds = ExportRef("EXCH01", BOX, "memory:x", ("a", "b"), replace(COMPLETE, succeeded=False))
    assert export_gap(listed, holds) is None  # the stronger check wins over the tool's word
    lacks = ExportRef("EXCH01", BOX, "memory:x", ("a",), COMPLETE)
    assert export_gap(listed, lacks) == "1 of its 2 items are not in the export"


def test_a_mailbox_has_either_item_ids_or_a_count() -> None:
    with pytest.raises(ValueError, match="either its item ids or its item count"):
        MailboxInfo(BOX, "EXCH01", "CN=Store", "/o=Corp/cn=jdoe", "J", None, None, None)
    with pytest.raises(ValueError, match="either its item ids or its item count"):
        MailboxInfo(
            BOX, "EXCH01", "CN=Store", "/o=Corp/cn=jdoe", "J", None, ("a",), None, counted_items=1
        )
    assert counted(items=7).item_count == 7


def test_an_import_without_any_record_would_fail_rather_than_pass_as_done() -> None:
    target = ImportTarget("EXCH01", "EXCH01", BLANK, BOX, "jdoe")
    box = counted(items=30, owner=USER, disconnected=False)
    change = ImportMail([target]).plan(target, ImportObservation(box, export(None)))
    assert isinstance(change, WouldFail) and "has no record" in change.reason
    done = export(replace(COMPLETE, file_bytes_now=None), into=(BOX,))
    assert isinstance(ImportMail([target]).plan(target, ImportObservation(box, done)), NoOp)
