"""What a plan, apply or resume did, however it ended, and the exit code that ending earns."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING

from remediate.engine.changes import LEFT_OUT, ChangeRecord, Finding, JsonValue
from remediate.engine.fingerprint import Fingerprint
from remediate.engine.stopping import Interrupted
from remediate.errors import RemediateError, RunPaused

if TYPE_CHECKING:
    from remediate.engine.playbook import Selection

EXIT_DONE = 0
EXIT_ERROR = 1
EXIT_PENDING = 2
EXIT_REFUSED = 3
EXIT_LEFT_OUT = 4  # done (or nothing else to do), but some targets were left out: see findings


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a plan, apply or resume did; the same shape for all three and for every ending.

    ``state`` is how the run ended: ``pending`` or ``nothing-to-do`` (plan), ``done``,
    ``refused``, ``failed``, ``paused`` or ``interrupted``; ``exit_code`` is the command line's
    code for it, ``error`` what stopped it, ``stop`` the exception that did (None once done).

    The engine's results keep the selection itself (``selected``), not its JSON: at 100,000
    users that JSON would be the largest thing of the run. :meth:`selection_json` makes it
    when asked; a result read back from a saved plan carries it as ``selection``."""

    mode: str
    playbook: str
    state: str
    parameters: dict[str, str]
    selection: JsonValue = None
    selection_summary: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    changes: list[ChangeRecord] = field(default_factory=list)
    planned: list[ChangeRecord] = field(default_factory=list)
    manual_actions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # drifted targets left out (--skip-drifted)
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)
    run_id: str | None = None
    run_dir: str | None = None
    error: str | None = None
    exit_code: int = EXIT_DONE
    _: KW_ONLY
    selected: Selection | None = None
    drifted: list[str] = field(default_factory=list)  # drifted targets that refused the run
    # plan: how long each step took in the rehearsal, on virtual time: the waits the world
    # models (replication, the cleanup agent), for the change ticket's expected duration
    rehearsed_s: dict[str, float] = field(default_factory=dict, compare=False)
    manual_steps: list[str] = field(default_factory=list, compare=False)  # plan: who asks
    approved: bool = False  # past the safety gates (or resumed): changes may have been made
    stop: BaseException | None = field(default=None, compare=False, repr=False)

    def selection_json(self) -> JsonValue:
        """The selection's JSON: as given, else made now from ``selected`` (each call makes it
        again: keep it where it is needed more than once)."""
        if self.selection is None and self.selected is not None:
            return self.selected.to_json()
        return self.selection

    def raise_for_stop(self) -> RunResult:
        """Raise what stopped the run (as ``apply`` and ``resume`` did before they returned
        every ending); the result itself if it was not stopped."""
        if self.stop is not None:
            raise self.stop
        return self

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "format": "remediate.result/1",
            "mode": self.mode,
            "playbook": self.playbook,
            "state": self.state,
            "exit_code": self.exit_code,
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "parameters": dict(self.parameters),
            "selection_summary": dict(self.selection_summary),
            "selection": self.selection_json(),
            "findings": [finding.to_json() for finding in self.findings],
            "manual_actions": list(self.manual_actions),
            "warnings": list(self.warnings),
            "skipped": list(self.skipped),
            "drifted": list(self.drifted),
            "changes": [record.to_json() for record in self.changes],
            "error": self.error,
        }


def done_code(findings: list[Finding]) -> int:
    """A finished run's exit code: 0, or 4 where discovery left targets out."""
    left_out = any(finding.kind == LEFT_OUT for finding in findings)
    return EXIT_LEFT_OUT if left_out else EXIT_DONE


@dataclass(frozen=True, slots=True)
class Ending:
    """How a stopped run ended: its state, exit code and message."""

    state: str
    exit_code: int
    error: str


def ending(stop: BaseException) -> Ending:
    """The state, exit code and message of a run stopped by ``stop``."""
    if isinstance(stop, RunPaused):
        return Ending("paused", EXIT_PENDING, stop.message)
    if isinstance(stop, RemediateError):
        state = "refused" if stop.exit_code == EXIT_REFUSED else "failed"
        return Ending(state, stop.exit_code, str(stop))
    if isinstance(stop, KeyboardInterrupt):
        how = stop.how if isinstance(stop, Interrupted) else "Ctrl-C"
        return Ending("interrupted", EXIT_ERROR, f"interrupted ({how})")
    if isinstance(stop, OSError):  # a full disk, an unwritable run directory
        name = stop.filename2 or stop.filename
        where = f"{name}: " if name else ""
        return Ending("failed", EXIT_ERROR, f"{where}{stop.strerror or stop}")
    return Ending("failed", EXIT_ERROR, str(stop))
