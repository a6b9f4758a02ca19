"""Certificates we must refuse, for LDAP (LDAPS and StartTLS) and WinRM (HTTPS): issued by a CA
we do not trust, expired, or for another name. Each refusal names the server, says what is
wrong with the certificate and what to do, and nothing (no bind, no SOAP request) gets through.
A good certificate on the same servers is accepted, so the refusals are the certificates'.
Also: no simple bind without TLS, no Basic over HTTP; neither reaches the wire."""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from kb_support import load, scenario
from tls_front import BIND_REQUEST, EXTENDED_REQUEST, TlsFront, operation_of
from winrm_endpoint import EndpointOptions
from winrm_endpoint.certs import Pki, make_pki
from winrm_support import serve

from remediate.adapters.ldap import ConnectionSettings, TlsMode, open_connection
from remediate.adapters.winrm import WinRmExchange
from remediate.errors import BackendError, PermanentError

pytestmark = pytest.mark.security

DC = "dc1.corp.example"


@dataclass(frozen=True)
class Case:
    served: Pki  # what the server presents
    trusted: Pki  # whose CA the client trusts
    says: str  # what the refusal says is wrong
    advice: str  # and what it says to do


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    names = (DC, "127.0.0.1", "localhost")
    good = make_pki(names=names)
    expired = make_pki(names=names, expired=True)
    wrong_name = make_pki(names=("dc7.corp.example", "exch07.corp.example"))
    return {
        "good": Case(good, good, "", ""),
        "wrong CA": Case(
            make_pki("another CA", names=names), good, "not issued by a CA we trust", "ca_file"
        ),
        "expired": Case(expired, expired, "has expired", "renew"),
        "wrong name": Case(wrong_name, wrong_name, "not issued for", "name"),
    }


REFUSED = ["wrong CA", "expired", "wrong name"]


def ca_file(tmp_path: Path, pki: Pki) -> Path:
    path = tmp_path / "ca.pem"
    path.write_bytes(pki.ca_pem)
    return path


# -- LDAP ---------------------------------------------------------------------------------------


def ldap_settings(front: TlsFront, mode: TlsMode, ca: Path) -> ConnectionSettings:
    return ConnectionSettings(
        bind_user="svc@corp.example",
        password="not-sent",
        tls_mode=mode,
        ca_file=ca,
        addresses={DC: "127.0.0.1"},
        port=front.port,
        connect_timeout_s=5,
        receive_timeout_s=5,
    )


@pytest.fixture(params=[TlsMode.LDAPS, TlsMode.STARTTLS], ids=str)
def mode(request: pytest.FixtureRequest) -> TlsMode:
    return TlsMode(request.param)


def assert_nothing_but_starttls_in_clear(front: TlsFront, mode: TlsMode) -> None:
    [seen] = front.seen
    expected = [EXTENDED_REQUEST] if mode is TlsMode.STARTTLS else []
    assert [operation_of(message) for message in seen.cleartext] == expected


@pytest.mark.parametrize("name", REFUSED)
def test_ldap_refuses_the_certificate(
    cases: dict[str, Case], name: str, mode: TlsMode, tmp_path: Path
) -> None:
    case = cases[name]
    with TlsFront(
        case.served.server_cert_pem, case.served.server_key_pem, starttls=mode is TlsMode.STARTTLS
    ) as front:
        settings = ldap_settings(front, mode, ca_file(tmp_path, case.trusted))
        with pytest.raises(PermanentError) as refused:
            open_connection(settings, DC)
    text = str(refused.value)
    assert DC in text and "TLS" in text and case.says in text and case.advice in text, text
    assert_nothing_but_starttls_in_clear(front, mode)
    assert front.seen[0].first_operation_over_tls is None  # the bind never left


def test_ldap_accepts_a_good_certificate_and_binds_over_it(
    cases: dict[str, Case], mode: TlsMode, tmp_path: Path
) -> None:
    case = cases["good"]
    with TlsFront(
        case.served.server_cert_pem, case.served.server_key_pem, starttls=mode is TlsMode.STARTTLS
    ) as front:
        settings = ldap_settings(front, mode, ca_file(tmp_path, case.trusted))
        with pytest.raises(BackendError):  # the front hangs up after reading the bind
            open_connection(settings, DC)
    assert front.seen[0].handshake == "ok"
    assert front.seen[0].first_operation_over_tls == BIND_REQUEST
    assert_nothing_but_starttls_in_clear(front, mode)


def test_ldap_refuses_a_simple_bind_without_tls_before_connecting() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.2)
        settings = ConnectionSettings(
            bind_user="svc@corp.example",
            password="not-sent",
            tls_mode=None,
            addresses={DC: "127.0.0.1"},
            port=listener.getsockname()[1],
        )
        with pytest.raises(PermanentError, match="without TLS") as refused:
            open_connection(settings, DC)
        assert DC in str(refused.value) and "tls_mode" in str(refused.value)
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing ever connected


# -- WinRM ---------------------------------------------------------------------------------------


@pytest.mark.winrm
@pytest.mark.parametrize("name", REFUSED)
def test_winrm_refuses_the_certificate(cases: dict[str, Case], name: str, tmp_path: Path) -> None:
    case = cases[name]
    world = load(scenario("kb278447", 1, seed=3, version="2016"))
    tls = (case.served.server_cert_pem, case.served.server_key_pem)
    with serve(world, EndpointOptions(tls=tls)) as site:
        [(server, endpoint)] = site.endpoints.items()
        config = replace(site.configs[0], ca_file=ca_file(tmp_path, case.trusted))
        with pytest.raises(PermanentError) as refused:
            WinRmExchange([config]).servers()
        assert endpoint.requests == []  # not one SOAP message, so no credentials either
    text = str(refused.value)
    assert server in text and config.url in text, text
    assert case.says in text and case.advice in text, text


@pytest.mark.winrm
def test_winrm_accepts_a_good_certificate(cases: dict[str, Case], tmp_path: Path) -> None:
    case = cases["good"]
    world = load(scenario("kb278447", 1, seed=3, version="2016"))
    tls = (case.served.server_cert_pem, case.served.server_key_pem)
    with serve(world, EndpointOptions(tls=tls)) as site:
        config = replace(site.configs[0], ca_file=ca_file(tmp_path, case.trusted))
        assert [s.name for s in WinRmExchange([config]).servers()] == [site.configs[0].server]


@pytest.mark.winrm
def test_winrm_refuses_basic_over_http_before_sending_anything() -> None:
    world = load(scenario("kb278447", 1, seed=3, version="2016"))
    with serve(world, EndpointOptions(auth="basic", allow_unencrypted=True)) as site:
        [(server, endpoint)] = site.endpoints.items()
        config = replace(site.configs[0], transport="basic")
        with pytest.raises(PermanentError) as refused:
            WinRmExchange([config]).servers()
        assert endpoint.requests == []
    text = str(refused.value)
    assert server in text and "Basic over http" in text and 'scheme = "https"' in text
