"""The fixed PowerShell scripts the Exchange adapter runs, per Exchange version and operation.

Every script is constant text: the data it works on arrives as arguments (base64), never in the
text. ``library(version)`` gives the scripts of one version, by operation name.
"""

from __future__ import annotations

from functools import cache

from remediate.model import ExchangeVersion

from . import cmdlets, legacy
from .assembly import Dialect, Parameter, Script

OPERATIONS = (
    "describe",
    "mailboxes",
    "service_states",
    "running_dependents",
    "set_services",
    "clean_database",
    "purge",
    "disable",
    "reconnect",
    "validate_reconnect",
    "update_recipients",
    "exports",
    "exmerge_prerequisites",
    "export",
    "import",
)


def missing_operation_hint(version: ExchangeVersion, operation: str) -> str | None:
    """What to do instead where this version has no script for ``operation``."""
    if version is ExchangeVersion.E2007 and operation in cmdlets.UNAVAILABLE_2007:
        return mail_export_refusal("this server", version)
    return None


def mail_export_refusal(
    server: str, version: ExchangeVersion, admin_display_version: str | None = None
) -> str | None:
    """Why ``server`` cannot export or import mail through these scripts (None: it can, or, for
    a 2010 server whose ``admin_display_version`` is not known, it may)."""
    if version is ExchangeVersion.E2007:
        return cmdlets.REFUSAL_2007.format(server=server)
    if (
        version is ExchangeVersion.E2010
        and admin_display_version
        and cmdlets.lacks_mailbox_requests(admin_display_version)
    ):
        return cmdlets.REFUSAL_2010_RTM.format(server=server, build=admin_display_version)
    return None


@cache
def library(version: ExchangeVersion) -> dict[str, Script]:
    """The scripts for servers of this version (an operation it lacks is left out)."""
    if version.legacy:
        return legacy.scripts(version)
    return cmdlets.scripts(version)


__all__ = [
    "OPERATIONS",
    "Dialect",
    "Parameter",
    "Script",
    "library",
    "mail_export_refusal",
    "missing_operation_hint",
]
