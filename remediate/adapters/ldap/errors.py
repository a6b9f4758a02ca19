"""LDAP failures as this package's errors: transient ones are retried, permanent ones are not.

Every message names the DC, the operation, the object and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping

from ldap3.core import exceptions as ldap_errors

from remediate.adapters import tls
from remediate.errors import BackendError, PermanentError, TransientError

# LDAP result codes (RFC 4511) worth retrying, and what to tell the operator about each.
TRANSIENT_CODES: Mapping[int, str] = {
    3: "timeLimitExceeded",
    51: "busy",
    52: "unavailable",
}
_HINTS: Mapping[int, str] = {
    19: "the directory refused the value: check it against the schema and the object's rules",
    32: "the object is gone or the name is wrong: refresh the selection",
    34: "the DN does not parse: check the base DN in the inventory",
    49: "the bind identity or its password is wrong: check the inventory and the password source",
    50: "the bind identity lacks the right, or the object is protected from accidental deletion",
    53: "the DC will not do this: check the object and the controls sent",
    66: "the object has children: delete it with Tree Delete",
    68: "an object with this name exists already",
}
_TRANSIENT_EXCEPTIONS = (
    ldap_errors.LDAPSocketOpenError,
    ldap_errors.LDAPSocketReceiveError,
    ldap_errors.LDAPSocketSendError,
    ldap_errors.LDAPSocketCloseError,
    ldap_errors.LDAPSessionTerminatedByServerError,
    ldap_errors.LDAPResponseTimeoutError,
    ldap_errors.LDAPCommunicationError,
    OSError,
)


def from_result(
    result: Mapping[str, object], *, dc: str, operation: str, target: str | None
) -> BackendError:
    """The error for a non-success LDAP result (``conn.result`` / SAFE_SYNC's ``result``)."""
    code = int(str(result.get("result", 80)))
    name = str(result.get("description") or "error")
    detail = str(result.get("message") or "").strip()
    message = f"{name} ({code})" + (f": {detail}" if detail else "")
    if code in TRANSIENT_CODES:
        return TransientError(
            message,
            endpoint=dc,
            operation=operation,
            target=target,
            hint="the DC is busy or unavailable; retried, then try again later",
        )
    return PermanentError(
        message,
        endpoint=dc,
        operation=operation,
        target=target,
        hint=_HINTS.get(code, "retrying cannot help: fix the cause and run again"),
    )


def from_exception(
    error: Exception, *, dc: str, operation: str, target: str | None
) -> BackendError:
    """The error for an exception ldap3 raised (socket, TLS, session)."""
    text = f"{type(error).__name__}: {error}"
    if _is_tls_failure(error):
        problem = tls.diagnose(
            text,
            server=dc,
            ca_key="ca_file in the inventory's [directory]",
            name_key="the DC's name in dcs, with its address in [directory.addresses]",
        )
        return PermanentError(
            f"TLS failed: {problem.what}; refused",
            endpoint=dc,
            operation=operation,
            target=target,
            hint=problem.advice,
        )
    if isinstance(error, _TRANSIENT_EXCEPTIONS):
        return TransientError(
            f"connection failed: {text}",
            endpoint=dc,
            operation=operation,
            target=target,
            hint="check that the DC is up and reachable; retried, then try again later",
        )
    return PermanentError(
        text,
        endpoint=dc,
        operation=operation,
        target=target,
        hint="retrying cannot help: fix the cause and run again",
    )


def _is_tls_failure(error: BaseException) -> bool:
    if isinstance(error, ldap_errors.LDAPSSLConfigurationError | ldap_errors.LDAPCertificateError):
        return True
    text = str(error).lower()
    return any(
        marker in text
        for marker in ("certificate", "ssl", "tls", "doesn't match any name", "hostname")
    )
