"""remediate: Exchange / Active Directory repair playbooks you can preview, apply, interrupt,
resume and audit.

>>> from remediate import Engine, get_playbook                     # doctest: +SKIP
>>> from remediate.fakes import load_world                          # doctest: +SKIP
>>> world = load_world("world.json")                                # doctest: +SKIP
>>> plan = Engine().plan(get_playbook("kb842101"), world, {"users": "jdoe"})  # doctest: +SKIP

Importing it configures no logging and prints nothing: the engine's events go to the journal,
to listeners (``RunListener``), and to structlog or ``logging.getLogger("remediate")`` once the
application sets either up.
"""

from remediate.engine.changes import (
    ChangeRecord,
    Finding,
    Impact,
    JsonValue,
    NoOp,
    Planned,
    Unknown,
    WouldFail,
)
from remediate.engine.fingerprint import Scope, mailbox_key, object_key, service_key
from remediate.engine.listener import RunInfo, RunListener
from remediate.engine.playbook import (
    Discovery,
    Disruption,
    OutlineStep,
    Parameter,
    Playbook,
    Selection,
    parse_bool,
    parse_datetime,
    parse_dn,
    parse_names,
    parse_parameters,
    parse_seconds,
    parse_text,
)
from remediate.engine.runner import Engine, RunResult, Safety
from remediate.engine.step import Options, Step, StepContext, Target
from remediate.engine.wording import Duration, Wording
from remediate.errors import (
    InputError,
    LockHeld,
    PermanentError,
    Refused,
    RemediateError,
    RunPaused,
    StepFailed,
    TransientError,
    WorldFormatError,
)
from remediate.model import (
    DirectoryEntry,
    ExchangeServer,
    ExchangeVersion,
    MailboxInfo,
    ServiceState,
    UserQuery,
)
from remediate.playbooks import ENTRY_POINT_GROUP, PLAYBOOKS, find_playbook, get_playbook
from remediate.ports import Directory, Exchange, ManualActionRequired, World

# The one place the version is written: pyproject.toml reads it from here.
__version__ = "0.1.0"

__all__ = [
    "ENTRY_POINT_GROUP",
    "PLAYBOOKS",
    "ChangeRecord",
    "Directory",
    "DirectoryEntry",
    "Discovery",
    "Disruption",
    "Duration",
    "Engine",
    "Exchange",
    "ExchangeServer",
    "ExchangeVersion",
    "Finding",
    "Impact",
    "InputError",
    "JsonValue",
    "LockHeld",
    "MailboxInfo",
    "ManualActionRequired",
    "NoOp",
    "Options",
    "OutlineStep",
    "Parameter",
    "PermanentError",
    "Planned",
    "Playbook",
    "Refused",
    "RemediateError",
    "RunInfo",
    "RunListener",
    "RunPaused",
    "RunResult",
    "Safety",
    "Scope",
    "Selection",
    "ServiceState",
    "Step",
    "StepContext",
    "StepFailed",
    "Target",
    "TransientError",
    "Unknown",
    "UserQuery",
    "Wording",
    "World",
    "WorldFormatError",
    "WouldFail",
    "__version__",
    "find_playbook",
    "get_playbook",
    "mailbox_key",
    "object_key",
    "parse_bool",
    "parse_datetime",
    "parse_dn",
    "parse_names",
    "parse_parameters",
    "parse_seconds",
    "parse_text",
    "service_key",
]
