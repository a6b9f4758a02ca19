"""One exception hierarchy: every message says what failed, on which target, and what to do."""

from __future__ import annotations


class RemediateError(Exception):
    """Base of every error this package raises on purpose.

    ``target`` names the object, server or file concerned; ``hint`` says what to do.
    """

    exit_code = 1

    def __init__(self, message: str, *, target: str | None = None, hint: str | None = None):
        self.message = message
        self.target = target
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.target}: {self.message}" if self.target else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class InputError(RemediateError):
    """Bad input from the operator: parameters, files, names."""


class WorldFormatError(InputError):
    """A world file does not match ``remediate.world/1``; ``path`` is the JSON path."""

    def __init__(self, path: str, message: str, *, source: str | None = None):
        self.json_path = path
        where = f"{source}: {path}" if source else path
        super().__init__(message, target=where, hint="fix the world file and try again")


class BackendError(RemediateError):
    """A directory or Exchange endpoint answered with an error."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        operation: str,
        target: str | None = None,
        hint: str | None = None,
    ):
        self.endpoint = endpoint
        self.operation = operation
        label = f"{endpoint} {operation}" + (f" {target}" if target else "")
        super().__init__(message, target=label, hint=hint)


class TransientError(BackendError):
    """Worth retrying: connection reset, timeout, server busy or unavailable."""


class PermanentError(BackendError):
    """Retrying cannot help: permissions, constraints, unknown identities."""


class StepFailed(RemediateError):
    """A step could not reach its desired state (WouldFail, Unknown, deadline passed)."""

    def __init__(
        self, step: str, message: str, *, target: str | None = None, hint: str | None = None
    ):
        self.step = step
        super().__init__(f"step {step}: {message}", target=target, hint=hint)


class Refused(RemediateError):
    """A safety gate said no before any change was made (exit code 3)."""

    exit_code = 3


class Drifted(Refused):
    """Targets of a saved plan changed since it was made; ``drifts`` lists every one (the
    message names only the first few: at 100,000 targets the full list is megabytes)."""

    def __init__(self, message: str, drifts: list[str], *, target: str, hint: str):
        self.drifts = drifts
        super().__init__(message, target=target, hint=hint)


class LockHeld(Refused):
    """Another run holds the organisation's lock."""


class RunPaused(RemediateError):
    """A manual action is still pending; the run can be resumed once it is done."""

    exit_code = 2

    def __init__(self, run_id: str, step: str, instructions: str):
        self.run_id = run_id
        self.step = step
        self.instructions = instructions
        super().__init__(
            f"paused at step {step}: {instructions}",
            target=f"run {run_id}",
            hint=f"do the manual action, then run: remediate resume {run_id}",
        )
