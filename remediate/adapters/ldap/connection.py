"""Connections to one DC: TLS (LDAPS or StartTLS) with certificate validation, simple bind only
over TLS, SAFE_SYNC, connect and receive timeouts, no referral chasing."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException

from remediate.errors import PermanentError

from . import errors


class _HandedOverConnection(ldap3.Connection):
    """SAFE_SYNC without its deep copies. Every operation detaches its own result and response
    from the connection while it holds the connection's lock, so what it returns is already
    the caller's alone: copying it again (ldap3 deep-copies every answer) only costs time, a
    third of a 1,000-entry search's."""

    def _prepare_return_value(self, status: Any, response: bool = False) -> Any:
        if not self.strategy.thread_safe:
            return status
        # ``result`` stays readable on the connection, as ldap3's own extensions expect; each
        # operation replaces it with a new dict, never changes the one handed out.
        answer, self.response = self.response, None
        request, self.request = self.request, None
        return status, self.result, answer if response else None, request


class TlsMode(StrEnum):
    LDAPS = "ldaps"  # TLS from the first byte, port 636
    STARTTLS = "starttls"  # port 389, StartTLS before the bind


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach and bind to every DC of the domain. ``addresses`` maps a DC's name to the
    address to dial when the name does not resolve (the certificate is still checked against
    the name). ``tls_mode=None`` exists only to be refused: a simple bind needs TLS."""

    bind_user: str
    password: str = field(repr=False)
    tls_mode: TlsMode | None = TlsMode.LDAPS
    ca_file: Path | None = None  # None: the system's CAs
    verify_certificate: bool = True
    addresses: dict[str, str] = field(default_factory=dict)
    port: int | None = None
    connect_timeout_s: float = 10.0
    receive_timeout_s: float = 60.0


def open_connection(settings: ConnectionSettings, dc: str) -> ldap3.Connection:
    """A bound SAFE_SYNC connection to ``dc``. A simple bind without TLS is refused here,
    before anything is sent."""
    if settings.tls_mode is None:
        raise PermanentError(
            "a simple bind without TLS would send the password in clear; refused",
            endpoint=dc,
            operation="directory.bind",
            target=settings.bind_user,
            hint="set tls_mode to 'ldaps' or 'starttls' in the inventory's [directory]",
        )
    ldaps = settings.tls_mode is TlsMode.LDAPS
    tls = ldap3.Tls(
        validate=ssl.CERT_REQUIRED if settings.verify_certificate else ssl.CERT_NONE,
        ca_certs_file=str(settings.ca_file) if settings.ca_file else None,
        valid_names=[dc],
    )
    server = ldap3.Server(
        settings.addresses.get(dc, dc),
        port=settings.port or (636 if ldaps else 389),
        use_ssl=ldaps,
        tls=tls,
        get_info=ldap3.NONE,
        connect_timeout=settings.connect_timeout_s,
    )
    connection = _HandedOverConnection(
        server,
        user=settings.bind_user,
        password=settings.password,
        client_strategy=ldap3.SAFE_SYNC,
        auto_referrals=False,
        receive_timeout=max(1, round(settings.receive_timeout_s)),  # ldap3 packs it as an int
        raise_exceptions=False,
        # Only the raw values are used (entries.py decodes them): ldap3's second, formatted
        # copy of every value was a fifth of a search's time on the client.
        check_names=False,
    )
    try:
        connection.open()
        if not ldaps:
            connection.start_tls()
        answer: Any = connection.bind()
    except (LDAPException, OSError) as error:
        raise errors.from_exception(
            error, dc=dc, operation="directory.bind", target=settings.bind_user
        ) from error
    ok, result = answer[0], answer[1]
    if not ok:
        connection.unbind()
        raise errors.from_result(
            result, dc=dc, operation="directory.bind", target=settings.bind_user
        )
    return connection
