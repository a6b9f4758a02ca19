"""Runs one of our scripts on one server through pywinrm and returns its JSON result.

One WinRS shell per call (UTF-8 code page 65001, no profile); the bootstrap command line is
constant and short, the script and its arguments go through stdin (see ``delivery.py``). pywinrm
retries a Receive that hits the WS-Management OperationTimeout forever; this runner keeps its own
deadline for the whole call. Exit codes: 0 result, 3 refused (permanent), 4 transient, anything
else a PowerShell error whose CLIXML stderr becomes the message.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from winrm.exceptions import WinRMOperationTimeoutError
from winrm.protocol import Protocol

from remediate.errors import BackendError, PermanentError, TransientError

from . import clixml, delivery, failures
from .config import ServerConfig
from .scripts import Script
from .scripts.assembly import EXIT_OK, EXIT_REFUSED, EXIT_TRANSIENT

UTF8_CODE_PAGE = 65001
STDIN_CHUNK = 64 * 1024  # bytes per WinRS Send, well inside MaxEnvelopeSize (153,600)


class ScriptRunner:
    """Runs scripts on one server. ``calls`` counts WinRM commands per operation."""

    def __init__(self, config: ServerConfig, *, monotonic: Callable[[], float] = time.monotonic):
        self.config = config
        self.calls: Counter[str] = Counter()
        self._monotonic = monotonic
        self._protocol: Protocol | None = None

    def _connect(self) -> Protocol:
        if self._protocol is None:
            config = self.config
            if config.transport == "basic" and config.scheme != "https":
                raise PermanentError(
                    "Basic over http would send the password in clear; refused",
                    endpoint=config.server,
                    operation="connect",
                    target=config.url,
                    hint='set scheme = "https" (and ca_file) for this server in the inventory, '
                    "or use transport ntlm or kerberos",
                )
            self._protocol = Protocol(
                endpoint=config.url,
                transport=config.transport,  # our names are pywinrm's
                kerberos_delegation=config.kerberos_delegation,
                username=config.identity,
                password=config.password(),
                server_cert_validation="validate",
                ca_trust_path=str(config.ca_file) if config.ca_file else "legacy_requests",
                message_encryption="auto",
                operation_timeout_sec=config.operation_timeout_s,
                read_timeout_sec=config.operation_timeout_s + 10,
            )
        return self._protocol

    def run(self, script: Script, values: Mapping[str, delivery.Value]) -> Any:
        """The script's result (decoded JSON); raises TransientError or PermanentError."""
        payload = delivery.stdin(script, values)
        self.calls[script.operation] += 1
        try:
            stdout, stderr, code = self._execute(payload)
        except BackendError:
            raise
        except Exception as error:
            self._protocol = None  # a fresh connection (and NTLM handshake) next time
            raise failures.classify(error, self.config, script.operation) from None
        return self._result(script, stdout, stderr, code)

    def _execute(self, payload: bytes) -> tuple[bytes, bytes, int]:
        protocol = self._connect()
        deadline = self._monotonic() + self.config.deadline_s
        shell = protocol.open_shell(codepage=UTF8_CODE_PAGE, noprofile=True)
        try:
            # The script arrives on stdin: a console-mode stdin pipe (pywinrm's default) can cut
            # a long line, so stdin is a plain pipe, as Ansible's WinRM plugin has it.
            command = protocol.run_command(
                shell, delivery.PROGRAM, list(delivery.ARGUMENTS), console_mode_stdin=False
            )
            try:
                for start in range(0, len(payload), STDIN_CHUNK):
                    last = start + STDIN_CHUNK >= len(payload)
                    protocol.send_command_input(
                        shell, command, payload[start : start + STDIN_CHUNK], end=last
                    )
                return self._receive(protocol, shell, command, deadline)
            finally:
                _quietly(lambda: protocol.cleanup_command(shell, command))
        finally:
            # close_session=False keeps the authenticated connection for the next call (no new
            # NTLM handshake per command).
            _quietly(lambda: protocol.close_shell(shell, close_session=False))

    def _receive(
        self, protocol: Protocol, shell: str, command: str, deadline: float
    ) -> tuple[bytes, bytes, int]:
        stdout, stderr = bytearray(), bytearray()
        while True:
            if self._monotonic() > deadline:
                raise TransientError(
                    f"the command did not finish within {self.config.deadline_s:g} s",
                    endpoint=self.config.server,
                    operation="receive",
                    hint="check whether it still runs on the server; raise deadline_s in the "
                    "inventory if it is just slow",
                )
            try:
                out, err, code, done = protocol.get_command_output_raw(shell, command)
            except WinRMOperationTimeoutError:
                continue  # nothing yet within one OperationTimeout: ask again
            stdout += out
            stderr += err
            if done:
                return bytes(stdout), bytes(stderr), code

    def _result(self, script: Script, stdout: bytes, stderr: bytes, code: int) -> Any:
        found = _marked(stdout)
        operation, server = script.operation, self.config.server
        if code == EXIT_OK and "RESULT" in found:
            return found["RESULT"]
        if code == EXIT_REFUSED and "REFUSED" in found:
            refusal = found["REFUSED"]
            raise PermanentError(
                str(refusal.get("message")),
                endpoint=server,
                operation=operation,
                target=refusal.get("target") or None,
            )
        if code == EXIT_TRANSIENT and "TRANSIENT" in found:
            raise TransientError(
                str(found["TRANSIENT"].get("message")),
                endpoint=server,
                operation=operation,
                hint="retry later",
            )
        message = clixml.clean(stderr)
        if code == EXIT_OK:
            message = f"the script ended without a result (exit 0) {message}".strip()
        raise failures.from_script(message, self.config, operation)


def _marked(stdout: bytes) -> dict[str, Any]:
    """The ``REMEDIATE-<KIND> <json>`` lines of stdout (other output is ignored)."""
    found: dict[str, Any] = {}
    for line in stdout.decode("utf-8", errors="replace").splitlines():
        if line.startswith("REMEDIATE-"):
            kind, _, text = line.removeprefix("REMEDIATE-").partition(" ")
            try:
                found[kind] = json.loads(text)
            except ValueError:
                continue
    return found


def _quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception:  # the shell dies with the connection anyway
        return
