"""Mail steps: export a mailbox's items before anything can destroy them; import them back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from remediate.engine.changes import Change, ChangeRecord, Impact, NoOp, Planned, WouldFail
from remediate.engine.step import Step, StepContext
from remediate.engine.wording import Wording, endpoints_text
from remediate.model import ExportRef, MailboxInfo
from remediate.steps.coverage import (
    export_gap,
    export_problems,
    items_to_import,
    where_exports_are,
)
from remediate.steps.exchange import mailboxes_by_guid, moved, stores_of
from remediate.steps.targets import ImportTarget, MailboxTarget


@dataclass(frozen=True, slots=True)
class MailboxAndExport:
    """A mailbox (None: not there), this run's export of the mail concerned (None: none), why
    the mailbox's server cannot export or import mail (None: it can) and where the export is
    (``Exchange.export_location`` of the server that made it)."""

    mailbox: MailboxInfo | None
    export: ExportRef | None
    refusal: str | None = None
    location: str = ""


ExportObservation = MailboxAndExport
ImportObservation = MailboxAndExport


class ExportMail(Step[MailboxTarget, ExportObservation]):
    """ExMerge (2000/2003) or New-MailboxExportRequest (2007+): a copy of every item."""

    name = "export-mail"
    impact = Impact.REVERSIBLE
    summary = "Export every item of the mailboxes to the run directory before any change"
    wording = Wording("export", "mailbox", "mailboxes")

    @classmethod
    def rollback(cls, records: Sequence[ChangeRecord]) -> tuple[str, ...]:
        return (
            f"Exports ({len(records)} mailbox(es)) change nothing on the server. They are in:",
            *where_exports_are((record.after for record in records), "to"),
            "Keep them until the change is accepted: they are the only copy of mail in purged "
            "mailboxes.",
        )

    def observe(
        self, ctx: StepContext, targets: Sequence[MailboxTarget]
    ) -> Mapping[str, ExportObservation]:
        server = targets[0].server
        guids = [target.guid for target in targets]
        found = mailboxes_by_guid(ctx, server, guids)
        exports = ctx.world.exchange.exports(server, guids)
        refusal = ctx.world.exchange.mail_export_refusal(server, list(found.values()))
        location = ctx.world.exchange.export_location(server)
        return {
            t.key: ExportObservation(found.get(t.guid), exports.get(t.guid), refusal, location)
            for t in targets
        }

    def plan(self, target: MailboxTarget, observation: ExportObservation) -> Change:
        box, export = observation.mailbox, observation.export
        if box is None:
            return NoOp(target.key, "no mailbox (already gone)")
        if (elsewhere := moved(target.store_dn, box)) is not None:
            return WouldFail(target.key, elsewhere)
        if not box.item_count:
            return NoOp(target.key, "no items to export")
        if export is not None and export_gap(box, export) is None:
            return NoOp(target.key, f"{box.item_count} items already exported")
        if observation.refusal is not None:
            return WouldFail(target.key, observation.refusal)
        return Planned(
            target.key,
            "export",
            before={"items": box.item_count},
            after={"exported": box.item_count, "to": observation.location},
        )

    def apply(self, ctx: StepContext, pending: Sequence[tuple[MailboxTarget, Planned]]) -> None:
        server = pending[0][0].server
        ctx.world.exchange.export_mail(
            server,
            [target.guid for target, _ in pending],
            stores_of([(target.guid, target.store_dn) for target, _ in pending]),
        )


class ImportMail(Step[ImportTarget, ImportObservation]):
    """ExMerge import (2000/2003) or New-MailboxImportRequest (2010 SP1+). Where item ids are
    listed an item already present is never imported twice; on real servers the import tool's
    own report of a complete import into this mailbox says it is done."""

    name = "import-mail"
    impact = Impact.REVERSIBLE
    summary = "Import the exported items into the reconnected original mailbox"
    wording = Wording("import mail into", "mailbox", "mailboxes")

    @classmethod
    def risk(cls, records: Sequence[ChangeRecord]) -> str | None:
        return (
            f"{len(records)} mailbox(es) on {endpoints_text(records)} receive the items that "
            "reached the blank mailboxes (users see them in the same folders)."
        )

    @classmethod
    def rollback(cls, records: Sequence[ChangeRecord]) -> tuple[str, ...]:
        return (
            "Imported items are copies of the exports; to undo, delete them from the mailbox "
            "(each export lists what it holds). The exports imported are in:",
            *where_exports_are((record.after for record in records), "from"),
        )

    def observe(
        self, ctx: StepContext, targets: Sequence[ImportTarget]
    ) -> Mapping[str, ImportObservation]:
        server = targets[0].server
        found = mailboxes_by_guid(ctx, server, [target.mailbox for target in targets])
        exports = {}
        locations = {}
        for source_server in {target.source_server for target in targets}:
            sources = [t.source for t in targets if t.source_server == source_server]
            exports.update(ctx.world.exchange.exports(source_server, sources))
            locations[source_server] = ctx.world.exchange.export_location(source_server)
        refusal = ctx.world.exchange.mail_export_refusal(server, list(found.values()))
        return {
            t.key: ImportObservation(
                found.get(t.mailbox), exports.get(t.source), refusal, locations[t.source_server]
            )
            for t in targets
        }

    def plan(self, target: ImportTarget, observation: ImportObservation) -> Change:
        box, export = observation.mailbox, observation.export
        if export is None:
            return NoOp(target.key, "nothing was exported from the blank mailbox")
        if box is None:
            return WouldFail(target.key, f"mailbox {target.mailbox} is not on {target.server}")
        if (elsewhere := moved(target.store_dn, box)) is not None:
            return WouldFail(target.key, elsewhere)
        # An import the tool reported complete stands, whatever became of the file since.
        problems = [] if box.guid in export.imported_into else export_problems(export)
        if problems:
            return WouldFail(
                target.key,
                f"the export {export.location} of mailbox "
                f"{export.mailbox} on {export.server}: {'; '.join(problems)}",
            )
        missing = items_to_import(box, export)
        if not missing:
            return NoOp(target.key, "every exported item is in the mailbox")
        if observation.refusal is not None:
            return WouldFail(target.key, observation.refusal)
        if box.owner is None:
            return WouldFail(target.key, "the mailbox is not connected to its user yet")
        return Planned(
            target.key,
            "import",
            before={"items": box.item_count},
            after={
                "items": box.item_count + missing,
                "imported": missing,
                "from": observation.location,
            },
        )

    def apply(self, ctx: StepContext, pending: Sequence[tuple[ImportTarget, Planned]]) -> None:
        server = pending[0][0].server
        observed = self.observe(ctx, [target for target, _ in pending])
        pairs = [
            (target.mailbox, export)
            for target, _ in pending
            if (export := observed[target.key].export) is not None
        ]
        ctx.world.exchange.import_mail(
            server, pairs, stores_of([(target.mailbox, target.store_dn) for target, _ in pending])
        )
