"""WinRS shells and commands: stdin, output split over Receives, exit codes, the cmd.exe limit."""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from . import clixml
from .soap import INVALID_SELECTORS, Fault

CMD_LINE_LIMIT = 8191
TOO_LONG = "The command line is too long.\r\n"
BAD_BASE64 = (
    "Cannot process the command because the value specified with -EncodedCommand is not "
    "properly encoded. The value must be Base64 encoded."
)


@dataclass
class HostResult:
    """What a PowerShell run produced: stdout text, exit code, error lines (CLIXML stderr)."""

    stdout: str = ""
    exit_code: int = 0
    errors: list[str] = field(default_factory=list)


class Host(Protocol):
    """Runs the PowerShell script that arrived; ``stdin()`` blocks until the client ends it."""

    def run(self, script: str, stdin: Callable[[], bytes]) -> HostResult: ...


def _codec(codepage: int) -> str:
    return {65001: "utf-8", 437: "cp437", 850: "cp850", 1252: "cp1252"}.get(codepage, "cp437")


class Command:
    def __init__(self, line: str, shell: Shell, console_mode_stdin: bool = True) -> None:
        self.id = str(uuid.uuid4()).upper()
        self.line = line
        # WINRS_CONSOLEMODE_STDIN as the client sent it (absent: TRUE, the WinRS default)
        self.console_mode_stdin = console_mode_stdin
        self._shell = shell
        self._stdin = bytearray()
        self._stdin_done = threading.Event()
        self._lock = threading.Condition()
        self._stdout = bytearray()
        self._stderr = bytearray()
        self.exit_code: int | None = None
        self.script: str | None = None
        self.stdin_bytes: bytes = b""

    def start(self, host: Host) -> None:
        threading.Thread(target=self._run, args=(host,), daemon=True).start()

    def send(self, data: bytes, end: bool) -> None:
        self._stdin.extend(data)
        if end:
            self._stdin_done.set()

    def _read_stdin(self) -> bytes:
        self._stdin_done.wait()
        self.stdin_bytes = bytes(self._stdin)
        return self.stdin_bytes

    def _finish(self, stdout: bytes, stderr: bytes, code: int) -> None:
        with self._lock:
            self._stdout.extend(stdout)
            self._stderr.extend(stderr)
            self.exit_code = code
            self._lock.notify_all()

    def _run(self, host: Host) -> None:
        if len(self.line) > CMD_LINE_LIMIT:
            self._finish(b"", TOO_LONG.encode(), 1)
            return
        program, script, problem = parse_command_line(self.line)
        if problem is not None:
            self._finish(b"", problem.encode(), 1)
            return
        if script is None:
            self._finish(
                b"",
                f"'{program}' is not recognized as an internal or external "
                "command,\r\noperable program or batch file.\r\n".encode(),
                1,
            )
            return
        self.script = script
        progress = self._shell.first_powershell()
        try:
            result = host.run(script, self._read_stdin)
        except Exception as error:  # a host bug surfaces as a PowerShell error, as on Windows
            result = HostResult(exit_code=1, errors=clixml.error_record(repr(error)))
        text = result.stdout.replace("\r\n", "\n").replace("\n", "\r\n")
        stdout = text.encode(_codec(self._shell.codepage), errors="replace")
        stderr = b""
        if progress or result.errors:
            stderr = clixml.document(progress=progress, error_lines=result.errors)
        self._finish(stdout, stderr, result.exit_code)

    def receive(self, wait_s: float, max_bytes: int) -> tuple[bytes, bytes, int | None]:
        """Output ready now (at most ``max_bytes`` of each stream), and the exit code once all
        of it has been handed out. Raises the OperationTimeout fault when nothing is ready."""
        with self._lock:
            if not self._lock.wait_for(
                lambda: self._stdout or self._stderr or self.exit_code is not None, wait_s
            ):
                raise Fault(
                    2150858793,
                    "w:TimedOut",
                    "The WS-Management service cannot complete the operation within the "
                    "time specified in OperationTimeout.",
                    sender=False,
                )
            stdout, stderr = bytes(self._stdout[:max_bytes]), bytes(self._stderr[:max_bytes])
            del self._stdout[:max_bytes], self._stderr[:max_bytes]
            done = self.exit_code is not None and not self._stdout and not self._stderr
            return stdout, stderr, self.exit_code if done else None


class Shell:
    def __init__(self, codepage: int) -> None:
        self.id = str(uuid.uuid4()).upper()
        self.codepage = codepage
        self.commands: dict[str, Command] = {}
        self._powershell_started = False

    def first_powershell(self) -> bool:
        """True once per shell: the first PowerShell writes "Preparing modules" progress."""
        first = not self._powershell_started
        self._powershell_started = True
        return first

    def command(self, command_id: str | None) -> Command:
        found = self.commands.get(command_id or "")
        if found is None:
            raise Fault(
                INVALID_SELECTORS,
                "w:InvalidParameter",
                "The WS-Management service cannot process the request because the "
                "command ID is not valid.",
            )
        return found


_PROGRAM = re.compile(r'^\s*(?:"([^"]*)"|(\S+))\s*(.*)$', re.DOTALL)


def parse_command_line(line: str) -> tuple[str, str | None, str | None]:
    """(program, PowerShell script or None when the program is not PowerShell, error text)."""
    match = _PROGRAM.match(line)
    if match is None:
        return "", None, None
    program = (match.group(1) or match.group(2) or "").replace("/", "\\").rsplit("\\", 1)[-1]
    name = program.lower().removesuffix(".exe")
    if name not in ("powershell", "pwsh"):
        return program, None, None
    words = match.group(3).split()
    index = 0
    while index < len(words):
        flag = words[index].lower()
        if flag == "-ec" or (len(flag) >= 2 and "-encodedcommand".startswith(flag)):
            try:
                raw = base64.b64decode(words[index + 1], validate=True)
                return program, raw.decode("utf-16-le"), None
            except (IndexError, ValueError):
                return program, None, BAD_BASE64 + "\r\n"
        if flag in ("-command", "-c"):
            return program, " ".join(words[index + 1 :]), None
        if flag in ("-executionpolicy", "-ep", "-inputformat", "-outputformat"):
            index += 1
        index += 1
    return program, "", None
