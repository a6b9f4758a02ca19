"""Steps, one module per domain: ad, replication, exchange, mail, services.

The built-in steps and their targets, for playbooks of your own (docs/PLAYBOOKS.md): use them
as they are, subclass one to change what it says in reports (``wording``, ``risk``,
``rollback``, ``expected_duration``), or write a new :class:`remediate.Step`.
"""

from remediate.steps.ad import DeleteAdUser, RemoveExchangeAttributes, StripTarget
from remediate.steps.exchange import PurgeMailbox, ReconnectMailbox, RunCleanupAgent
from remediate.steps.mail import ExportMail, ImportMail
from remediate.steps.replication import (
    DirectoryUse,
    Expectation,
    ReplicationTarget,
    WaitForReplication,
    replication_targets,
)
from remediate.steps.services import StartService, StopService
from remediate.steps.targets import (
    ImportTarget,
    MailboxTarget,
    ReconnectTarget,
    ServiceTarget,
    StoreTarget,
    UserTarget,
    exchange_endpoint,
)

__all__ = [
    "DeleteAdUser",
    "DirectoryUse",
    "Expectation",
    "ExportMail",
    "ImportMail",
    "ImportTarget",
    "MailboxTarget",
    "PurgeMailbox",
    "ReconnectMailbox",
    "ReconnectTarget",
    "RemoveExchangeAttributes",
    "ReplicationTarget",
    "RunCleanupAgent",
    "ServiceTarget",
    "StartService",
    "StopService",
    "StoreTarget",
    "StripTarget",
    "UserTarget",
    "WaitForReplication",
    "exchange_endpoint",
    "replication_targets",
]
