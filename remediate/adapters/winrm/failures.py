"""What went wrong talking to a server, as a TransientError (worth retrying) or a PermanentError
(retrying cannot help), each naming the server and saying what to do."""

from __future__ import annotations

import re

import requests
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)

from remediate.adapters import tls
from remediate.errors import BackendError, PermanentError, TransientError

from .config import ServerConfig

_PERMANENT_TEXT = re.compile(
    r"access (is )?denied|unauthori[sz]ed|couldn't be found|cannot be found|could not be found|"
    r"doesn't exist|does not exist|not recognized as the name of a cmdlet|is not recognized",
    re.IGNORECASE,
)
_TRANSIENT_TEXT = re.compile(
    r"RPC server is unavailable|timed out|temporarily|server is busy|try again|0x800706BA",
    re.IGNORECASE,
)


def classify(error: Exception, server: ServerConfig, operation: str) -> BackendError:
    """The error a call to ``server`` raised, as one of ours."""
    where = {"endpoint": server.server, "operation": operation}
    url = server.url
    if isinstance(error, InvalidCredentialsError):
        return PermanentError(
            f"{url} rejected the credentials of {server.identity} ({server.transport})",
            **where,
            hint="check the identity and its password (password_env in the inventory); the "
            "account needs to be an administrator of the server, and over http WinRM refuses "
            "Basic and unencrypted messages",
        )
    if isinstance(error, requests.exceptions.SSLError):
        problem = tls.diagnose(
            str(error),
            server=url,
            ca_key="ca_file in the inventory's [[exchange]] entry",
            name_key="host in the inventory's [[exchange]] entry",
        )
        return PermanentError(f"TLS failed: {problem.what}; refused", **where, hint=problem.advice)
    if isinstance(error, requests.exceptions.Timeout):
        return TransientError(
            f"no answer from {url} in time",
            **where,
            hint="check that the server is up; raise operation_timeout_s if it is just slow",
        )
    if isinstance(error, requests.exceptions.ConnectionError):
        return TransientError(
            f"cannot connect to {url}: {_first_line(error)}",
            **where,
            hint=f"check that the server is up, that WinRM listens on port {server.port} "
            "(winrm quickconfig) and that no firewall blocks it",
        )
    if isinstance(error, WinRMOperationTimeoutError):
        return TransientError(
            "the command did not finish in time",
            **where,
            hint="raise deadline_s for this server, or check it is not hung",
        )
    if isinstance(error, WSManFaultError):
        return PermanentError(
            f"{url} answered with a WS-Management fault {error.wsman_fault_code}: {error.reason}",
            **where,
            hint="check the server's WinRM configuration (winrm get winrm/config)",
        )
    if isinstance(error, WinRMTransportError):
        kind = TransientError if error.code >= 500 else PermanentError
        return kind(
            f"{url} answered HTTP {error.code}",
            **where,
            hint="check the server's WinRM service and its event log",
        )
    if isinstance(error, WinRMError) and "not installed" in str(error):
        return PermanentError(
            f"transport {server.transport} needs a package this machine lacks: {error}",
            **where,
            hint=f"pip install 'remediate[{server.transport}]', or choose another transport",
        )
    if isinstance(error, WinRMError):
        return PermanentError(f"{url}: {error}", **where, hint="check the server's WinRM setup")
    raise error


def from_script(message: str, server: ServerConfig, operation: str) -> BackendError:
    """A script that failed with this PowerShell error text."""
    where = {"endpoint": server.server, "operation": operation}
    text = message or "the script failed without an error message"
    if _TRANSIENT_TEXT.search(text) and not _PERMANENT_TEXT.search(text):
        return TransientError(text, **where, hint="retry later; check the server's services")
    return PermanentError(
        text,
        **where,
        hint=f"read the error from {server.server}; if it "
        "names a missing cmdlet or snap-in, check the inventory's version",
    )


def _first_line(error: Exception) -> str:
    text = str(error)
    return text.splitlines()[0][:300] if text else type(error).__name__
