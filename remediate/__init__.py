"""remediate: Exchange / Active Directory repair playbooks you can preview, apply, interrupt,
resume and audit.

>>> from remediate import Engine, get_playbook                     # doctest: +SKIP
>>> from remediate.fakes import load_world                          # doctest: +SKIP
>>> world = load_world("world.json")                                # doctest: +SKIP
>>> plan = Engine().plan(get_playbook("kb842101"), world, {"users": "jdoe"})  # doctest: +SKIP

Importing it configures no logging and prints nothing: the engine's events go to the journal,
to subscribers, and to structlog or ``logging.getLogger("remediate")`` once the application
sets either up.
"""

from remediate.engine.changes import (
    ChangeRecord,
    Finding,
    Impact,
    NoOp,
    Planned,
    Unknown,
    WouldFail,
)
from remediate.engine.runner import Engine, RunResult, Safety
from remediate.engine.step import Options, Step, StepContext
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
from remediate.playbooks import PLAYBOOKS, get_playbook

# The one place the version is written: pyproject.toml reads it from here.
__version__ = "0.1.0"

__all__ = [
    "PLAYBOOKS",
    "ChangeRecord",
    "Engine",
    "Finding",
    "Impact",
    "InputError",
    "LockHeld",
    "NoOp",
    "Options",
    "PermanentError",
    "Planned",
    "Refused",
    "RemediateError",
    "RunPaused",
    "RunResult",
    "Safety",
    "Step",
    "StepContext",
    "StepFailed",
    "TransientError",
    "Unknown",
    "WorldFormatError",
    "WouldFail",
    "__version__",
    "get_playbook",
]
