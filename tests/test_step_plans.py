"""Each step's plan(): observation in, change out. Pure, no world needed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from remediate.engine.changes import Change, NoOp, Planned, WouldFail
from remediate.engine.step import Step
from remediate.model import DirectoryEntry, ExchangeVersion, ExportRef, MailboxInfo, ServiceState
from remediate.steps.ad import DeleteAdUser, RemoveExchangeAttributes, StripTarget, UserObservation
from remediate.steps.exchange import (
    PurgeMailbox,
    PurgeObservation,
    ReconnectMailbox,
    ReconnectObservation,
    RunCleanupAgent,
)
from remediate.steps.mail import ExportMail, ExportObservation, ImportMail, ImportObservation
from remediate.steps.replication import Expectation, ReplicationTarget, WaitForReplication
from remediate.steps.services import StartService, StopService
from remediate.steps.targets import (
    ImportTarget,
    MailboxTarget,
    ReconnectTarget,
    ServiceTarget,
    StoreTarget,
    UserTarget,
)

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
USER = UUID("11111111-1111-4111-8111-111111111111")
BOX = UUID("22222222-2222-4222-8222-222222222222")
OTHER = UUID("33333333-3333-4333-8333-333333333333")


def entry(guid: UUID = USER, *, protected: bool = False, **attributes: str) -> DirectoryEntry:
    return DirectoryEntry(
        guid,
        f"CN=u{guid.hex[:4]},OU=Migrated,DC=corp,DC=example",
        "user",
        T0,
        T0,
        10,
        protected,
        dict(attributes),
    )


def mailbox(
    guid: UUID = BOX, *, items: int = 2, owner: UUID | None = None, disconnected: bool = False
) -> MailboxInfo:
    return MailboxInfo(
        guid,
        "EXCH01",
        "CN=Store",
        "/o=Corp/cn=u",
        "U",
        T0 if disconnected else None,
        tuple(f"i{n}" for n in range(items)),
        owner,
    )


def export(guid: UUID = BOX, items: int = 2) -> ExportRef:
    return ExportRef("EXCH01", guid, "memory:x", tuple(f"i{n}" for n in range(items)))


USER_T = UserTarget(USER, "CN=u,OU=Migrated,DC=corp,DC=example", "u")
BOX_T = MailboxTarget("EXCH01", "CN=Store", BOX, "u")
STORE_T = StoreTarget("EXCH01", "CN=Store", "Store", (BOX,))
RECONNECT_T = ReconnectTarget("EXCH01", "2003", "CN=Store", BOX, USER, "CN=u", "/o=Corp/cn=EXCH01")
IMPORT_T = ImportTarget("EXCH01", "EXCH01", OTHER, BOX, "u")
SERVICE_T = ServiceTarget("EXCH01", "SMTPSVC")
STRIP_T = StripTarget(USER_T, "EXCH01", ExchangeVersion.E2000)
REPL_T = ReplicationTarget(
    "DC2", (Expectation(USER, deleted=True), Expectation(OTHER, deleted=True))
)


@dataclass(frozen=True)
class Case:
    name: str
    step: Step[Any, Any]
    target: Any
    observation: Any
    expected: type[Change]
    action: str | None = None
    deletes: int = 0


REFUSAL = "EXCH01 runs Exchange 2007, which cannot export or import mail"

CASES = [
    Case(
        "delete: present user is deleted",
        DeleteAdUser([USER_T]),
        USER_T,
        UserObservation(entry(), (), False),
        Planned,
        "delete",
        1,
    ),
    Case(
        "delete: a child makes it a tree delete counting both",
        DeleteAdUser([USER_T]),
        USER_T,
        UserObservation(entry(), (entry(OTHER),), False),
        Planned,
        "tree-delete",
        2,
    ),
    Case(
        "delete: gone user is a no-op",
        DeleteAdUser([USER_T]),
        USER_T,
        UserObservation(None, (), False),
        NoOp,
    ),
    Case(
        "delete: protected user would fail",
        DeleteAdUser([USER_T]),
        USER_T,
        UserObservation(entry(protected=True), (), False),
        WouldFail,
    ),
    Case(
        "delete: protected child would fail too",
        DeleteAdUser([USER_T]),
        USER_T,
        UserObservation(entry(), (entry(OTHER, protected=True),), False),
        WouldFail,
    ),
    Case(
        "delete: protected allowed explicitly",
        DeleteAdUser([USER_T]),
        USER_T,
        UserObservation(entry(protected=True), (), True),
        Planned,
        "delete",
        1,
    ),
    Case(
        "strip: mail-enabled user loses attributes",
        RemoveExchangeAttributes([STRIP_T]),
        STRIP_T,
        UserObservation(entry(homeMDB="CN=Store", msExchMailboxGuid=str(BOX)), (), False),
        Planned,
        "remove-exchange-attributes",
    ),
    Case(
        "strip: plain user is a no-op",
        RemoveExchangeAttributes([STRIP_T]),
        STRIP_T,
        UserObservation(entry(), (), False),
        NoOp,
    ),
    Case(
        "strip: missing user would fail",
        RemoveExchangeAttributes([STRIP_T]),
        STRIP_T,
        UserObservation(None, (), False),
        WouldFail,
    ),
    Case(
        "replication: a DC behind is waited for",
        WaitForReplication([REPL_T]),
        REPL_T,
        1,
        Planned,
        "wait",
    ),
    Case(
        "replication: a DC that shows all is a no-op", WaitForReplication([REPL_T]), REPL_T, 2, NoOp
    ),
    Case(
        "cleanup: connected orphan mailbox gets disconnected",
        RunCleanupAgent([STORE_T]),
        STORE_T,
        {BOX: mailbox()},
        Planned,
        "run-cleanup-agent",
    ),
    Case(
        "cleanup: already disconnected is a no-op",
        RunCleanupAgent([STORE_T]),
        STORE_T,
        {BOX: mailbox(disconnected=True)},
        NoOp,
    ),
    Case(
        "cleanup: a mailbox its DC still links to a user would fail",
        RunCleanupAgent([STORE_T]),
        STORE_T,
        {BOX: mailbox(owner=USER)},
        WouldFail,
    ),
    Case(
        "purge: disconnected and exported is purged",
        PurgeMailbox([BOX_T]),
        BOX_T,
        PurgeObservation(mailbox(disconnected=True), None),
        Planned,
        "purge",
        1,
    ),
    Case(
        "purge: items without an export would fail",
        PurgeMailbox([BOX_T]),
        BOX_T,
        PurgeObservation(mailbox(disconnected=True), "2 items and no export of them"),
        WouldFail,
    ),
    Case(
        "purge: connected mailbox would fail",
        PurgeMailbox([BOX_T]),
        BOX_T,
        PurgeObservation(mailbox(), None),
        WouldFail,
    ),
    Case(
        "purge: gone mailbox is a no-op",
        PurgeMailbox([BOX_T]),
        BOX_T,
        PurgeObservation(None, None),
        NoOp,
    ),
    Case(
        "export: mailbox with items is exported",
        ExportMail([BOX_T]),
        BOX_T,
        ExportObservation(mailbox(), None),
        Planned,
        "export",
    ),
    Case(
        "export: empty mailbox needs no export",
        ExportMail([BOX_T]),
        BOX_T,
        ExportObservation(mailbox(items=0), None),
        NoOp,
    ),
    Case(
        "export: an export holding every item is a no-op",
        ExportMail([BOX_T]),
        BOX_T,
        ExportObservation(mailbox(), export()),
        NoOp,
    ),
    Case(
        "export: a new item makes the export stale",
        ExportMail([BOX_T]),
        BOX_T,
        ExportObservation(mailbox(items=3), export(items=2)),
        Planned,
        "export",
    ),
    Case(
        "export: a server that cannot export would fail",
        ExportMail([BOX_T]),
        BOX_T,
        ExportObservation(mailbox(), None, REFUSAL),
        WouldFail,
    ),
    Case(
        "export: an exported mailbox is a no-op even there",
        ExportMail([BOX_T]),
        BOX_T,
        ExportObservation(mailbox(), export(), REFUSAL),
        NoOp,
    ),
    Case(
        "import: a server that cannot import would fail",
        ImportMail([IMPORT_T]),
        IMPORT_T,
        ImportObservation(mailbox(owner=USER), export(OTHER, items=3), REFUSAL),
        WouldFail,
    ),
    Case(
        "import: missing items are imported",
        ImportMail([IMPORT_T]),
        IMPORT_T,
        ImportObservation(mailbox(owner=USER), export(OTHER, items=3)),
        Planned,
        "import",
    ),
    Case(
        "import: all present is a no-op",
        ImportMail([IMPORT_T]),
        IMPORT_T,
        ImportObservation(mailbox(owner=USER, items=3), export(OTHER, items=3)),
        NoOp,
    ),
    Case(
        "import: into a mailbox nobody owns would fail",
        ImportMail([IMPORT_T]),
        IMPORT_T,
        ImportObservation(mailbox(), export(OTHER, items=3)),
        WouldFail,
    ),
    Case(
        "reconnect: disconnected original is reconnected",
        ReconnectMailbox([RECONNECT_T]),
        RECONNECT_T,
        ReconnectObservation(mailbox(disconnected=True), entry()),
        Planned,
        "reconnect",
    ),
    Case(
        "reconnect: connected to its user is a no-op",
        ReconnectMailbox([RECONNECT_T]),
        RECONNECT_T,
        ReconnectObservation(mailbox(owner=USER), entry()),
        NoOp,
    ),
    Case(
        "reconnect: owned by someone else would fail",
        ReconnectMailbox([RECONNECT_T]),
        RECONNECT_T,
        ReconnectObservation(mailbox(owner=OTHER), entry()),
        WouldFail,
    ),
    Case(
        "stop: running service is stopped",
        StopService([SERVICE_T]),
        SERVICE_T,
        ServiceState.RUNNING,
        Planned,
        "stop",
    ),
    Case(
        "stop: stopped service is a no-op",
        StopService([SERVICE_T]),
        SERVICE_T,
        ServiceState.STOPPED,
        NoOp,
    ),
    Case(
        "start: stopped service is started",
        StartService([SERVICE_T]),
        SERVICE_T,
        ServiceState.STOPPED,
        Planned,
        "start",
    ),
    Case(
        "service: unknown service would fail", StartService([SERVICE_T]), SERVICE_T, None, WouldFail
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_step_plans_the_change_its_observation_calls_for(case: Case) -> None:
    change = case.step.plan(case.target, case.observation)
    assert isinstance(change, case.expected), change
    assert change.target == case.target.key
    if isinstance(change, Planned):
        assert change.action == case.action
        assert change.deletes == case.deletes


def test_every_step_kind_has_a_fixture() -> None:
    covered = {case.step.name for case in CASES}
    assert covered == {
        "delete-ad-user",
        "remove-exchange-attributes",
        "wait-for-replication",
        "run-cleanup-agent",
        "purge-mailbox",
        "export-mail",
        "import-mail",
        "reconnect-mailbox",
        "stop-service",
        "start-service",
    }
