"""The export directory as our export and import scripts leave it, for every server of a site: per
exported mailbox the record the export tool's report became (``<guid>.export.json``) and one per
import of it (``<guid>.import.<target>.json``). The PST itself is the fake's export (its sink);
its size follows from what it holds, so a rewritten export shows as a changed file.

Tests steer what the tools report: ``bad_items`` (every export of a mailbox skips that many
items, so the tool reports a failure) and ``unreachable`` (the session cannot reach the share:
the double hop of an NTLM session)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from remediate.adapters.winrm.evidence import RECORD_FORMAT
from remediate.model import ExchangeVersion

EXMERGE_SUMMARY = (
    "{ok} mailboxes successfully processed. {failed} mailboxes were not "
    "successfully processed. {errors} non-fatal errors encountered."
)


def pst_bytes(item_ids: Sequence[str]) -> int:
    return 265_216 + sum(2048 + 8 * len(item) for item in item_ids)


def mailbox_bytes(item_ids: Sequence[str], version: ExchangeVersion) -> int:
    size = sum(4096 + 16 * len(item) for item in item_ids)
    return size // 1024 * 1024 if version.legacy else size  # WMI reports KB


@dataclass
class ExportShare:
    exports: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    imports: dict[UUID, dict[UUID, dict[str, Any]]] = field(default_factory=dict)
    bad_items: dict[UUID, int] = field(default_factory=dict)
    unreachable: bool = False

    def record_export(
        self,
        server: str,
        version: ExchangeVersion,
        mailbox: UUID,
        source: Sequence[str],
        exported: Sequence[str],
    ) -> dict[str, Any]:
        """What the export script writes after the tool finished; an earlier export's records
        are moved aside."""
        bad = self.bad_items.get(mailbox, 0)  # a corrupt item stays corrupt
        record: dict[str, Any] = {
            "mailbox": str(mailbox),
            "source_items": len(source),
            "source_bytes": mailbox_bytes(source, version),
            "bad_items": bad,
            "file_bytes": pst_bytes(exported),
        }
        if version.legacy:
            record.update(
                tool="ExMerge",
                exported_items=None,
                estimated_items=None,
                status=EXMERGE_SUMMARY.format(ok=1, failed=0, errors=bad),
                succeeded=not bad,
            )
        else:
            status = "Failed" if bad else "Completed"
            record.update(
                tool="New-MailboxExportRequest",
                status=status,
                succeeded=not bad,
                exported_items=len(exported) - bad,
                estimated_items=len(exported),
            )
        self.exports[mailbox] = _stamped(server, record)
        self.imports.pop(mailbox, None)
        return record

    def record_import(
        self, server: str, version: ExchangeVersion, export: UUID, target: UUID, items: int
    ) -> None:
        tool = "ExMerge" if version.legacy else "New-MailboxImportRequest"
        status = EXMERGE_SUMMARY.format(ok=1, failed=0, errors=0) if version.legacy else "Completed"
        self.imports.setdefault(export, {})[target] = _stamped(
            server,
            {
                "tool": tool,
                "export": str(export),
                "mailbox": str(target),
                "status": status,
                "succeeded": True,
                "bad_items": 0,
                "imported_items": None if version.legacy else items,
            },
        )

    def row(self, mailbox: UUID, location: str, item_ids: Sequence[str] | None) -> dict[str, Any]:
        """What ``Get-RemediateExportRecord`` returns for one mailbox."""
        record = self.exports.get(mailbox)
        return {
            "location": location,
            "file_bytes_now": None if item_ids is None else pst_bytes(item_ids),
            "evidence": None if record is None else json.dumps(record),
            "imports": [json.dumps(r) for r in self.imports.get(mailbox, {}).values()],
        }


def _stamped(server: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        **record,
        "format": RECORD_FORMAT,
        "server": server,
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
