"""The ldap3 adapter beyond the port contract: TLS and binds, error classification, DC discovery,
paged searches (one request per page), all against the session's Samba AD DC where it matters."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from directory_backends import SAMBA_DC_NAME, samba_directory, unique
from ldap3.core import connection as ldap3_connection
from samba_dc import SambaDC

from remediate.adapters.ldap import (
    ConnectionSettings,
    LdapDirectory,
    TlsMode,
    discovery,
    filters,
    open_connection,
)
from remediate.adapters.ldap import errors as ldap_errors
from remediate.adapters.ldap.directory import GUIDS_PER_SEARCH
from remediate.dn import normalize
from remediate.errors import PermanentError, TransientError
from remediate.model import UserQuery


def settings_for(dc: SambaDC, **changes: object) -> ConnectionSettings:
    base = ConnectionSettings(
        bind_user=dc.bind_user,
        password=dc.password,
        ca_file=dc.ca_file,
        addresses={SAMBA_DC_NAME: dc.host},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (3, TransientError),
        (51, TransientError),
        (52, TransientError),
        (19, PermanentError),
        (49, PermanentError),
        (50, PermanentError),
        (66, PermanentError),
    ],
)
def test_ldap_result_codes_are_classified(code: int, kind: type[Exception]) -> None:
    error = ldap_errors.from_result(
        {"result": code, "description": "x", "message": "detail"},
        dc="dc1.corp.example",
        operation="directory.delete",
        target="CN=Ann,DC=corp",
    )
    assert type(error) is kind
    assert "dc1.corp.example" in str(error) and "CN=Ann,DC=corp" in str(error)
    assert error.hint


def test_filters_escape_text_and_binary_values_differently() -> None:
    assert filters.equals("cn", "a*(b)\\c\x00") == "(cn=a\\2a\\28b\\29\\5cc\\00)"
    raw = bytes(range(250, 256)) + b"*()\\"
    assert (
        filters.equals_binary("objectGUID", raw)
        == "(objectGUID=" + "".join(f"\\{byte:02x}" for byte in raw) + ")"
    )
    assert filters.any_of([]) == "(!(objectClass=*))"


@pytest.mark.security
def test_a_simple_bind_without_tls_is_refused_before_anything_is_sent() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        settings = ConnectionSettings(
            bind_user="Administrator@corp.example",
            password="secret",
            tls_mode=None,
            addresses={"dc1.corp.example": "127.0.0.1"},
            port=port,
        )
        with pytest.raises(PermanentError, match="without TLS") as refused:
            open_connection(settings, "dc1.corp.example")
        assert "tls_mode" in str(refused.value)
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing ever connected


def test_a_dc_that_does_not_answer_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connection refused
        settings = ConnectionSettings(
            bind_user="a@b",
            password="p",
            addresses={"dc9.corp.example": "127.0.0.1"},
            port=port,
            connect_timeout_s=2,
        )
        with pytest.raises(TransientError, match=r"dc9\.corp\.example"):
            open_connection(settings, "dc9.corp.example")


@pytest.mark.samba
def test_ldaps_and_starttls_both_validate_and_bind(samba_dc: SambaDC) -> None:
    for mode in (TlsMode.LDAPS, TlsMode.STARTTLS):
        connection = open_connection(settings_for(samba_dc, tls_mode=mode), SAMBA_DC_NAME)
        assert connection.bound
        assert connection.server.tls.validate != 0
        connection.unbind()


@pytest.mark.security
@pytest.mark.samba
def test_a_certificate_from_another_ca_is_refused(samba_dc: SambaDC, tmp_path: Path) -> None:
    system_cas = Path("/etc/ssl/certs/ca-certificates.crt")
    other = tmp_path / "other-ca.pem"
    other.write_text(system_cas.read_text() if system_cas.exists() else "")
    for mode in (TlsMode.LDAPS, TlsMode.STARTTLS):
        with pytest.raises(PermanentError, match="TLS failed") as refused:
            open_connection(settings_for(samba_dc, ca_file=other, tls_mode=mode), SAMBA_DC_NAME)
        assert SAMBA_DC_NAME in str(refused.value)
        assert "not issued by a CA we trust" in str(refused.value)
        assert "ca_file" in str(refused.value)


@pytest.mark.security
@pytest.mark.samba
def test_a_certificate_for_another_name_is_refused(samba_dc: SambaDC) -> None:
    wrong = "dc7.samdom.test"
    settings = settings_for(samba_dc, addresses={wrong: samba_dc.host})
    with pytest.raises(PermanentError, match="TLS failed") as refused:
        open_connection(settings, wrong)
    assert wrong in str(refused.value)


@pytest.mark.security
@pytest.mark.samba
def test_a_wrong_password_is_permanent_and_names_the_identity(samba_dc: SambaDC) -> None:
    with pytest.raises(PermanentError, match=r"invalidCredentials \(49\)") as refused:
        open_connection(settings_for(samba_dc, password="wrong"), SAMBA_DC_NAME)
    assert samba_dc.bind_user in str(refused.value)
    assert "wrong" not in str(refused.value).replace("is wrong", "")


@pytest.mark.samba
def test_dcs_are_discovered_from_the_configuration_partition(samba_dc: SambaDC) -> None:
    directory = LdapDirectory(
        settings_for(samba_dc),
        domain="samdom.test",
        base_dn=samba_dc.base_dn,
        bootstrap_dc=SAMBA_DC_NAME,
    )
    assert directory.domain_controllers() == [SAMBA_DC_NAME]
    assert directory.writable_dc() == SAMBA_DC_NAME
    directory.close()


@pytest.mark.samba
def test_finding_many_users_takes_one_request_per_page(samba_dc: SambaDC) -> None:
    setup = samba_directory(samba_dc)
    connection = setup.connection(SAMBA_DC_NAME)
    ou = f"OU={unique('paged-')},{samba_dc.base_dn}"
    connection.add(ou, ["organizationalUnit"])
    count, page = 120, 40
    for number in range(count):
        connection.add(f"CN=user{number},{ou}", ["user"], {"sAMAccountName": unique("p")})
    setup.close()
    directory = LdapDirectory(
        settings_for(samba_dc),
        domain="samdom.test",
        base_dn=samba_dc.base_dn,
        dcs=[SAMBA_DC_NAME],
        page_size=page,
    )
    found = directory.find_users(UserQuery(base_dn=ou), SAMBA_DC_NAME)
    assert len(found) == count
    assert directory.requests <= count // page + 1
    before = directory.requests
    assert len(directory.read([entry.guid for entry in found], SAMBA_DC_NAME)) == count
    # GUID filters of up to GUIDS_PER_SEARCH objects, each paged
    assert directory.requests - before <= count // page + count // GUIDS_PER_SEARCH + 1
    directory.close()


@pytest.mark.samba
def test_answers_are_handed_over_without_ldap3s_deep_copies(
    samba_dc: SambaDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(value: object, memo: object = None) -> object:
        raise AssertionError("deep-copied")

    monkeypatch.setattr(ldap3_connection, "deepcopy", refuse)
    directory = samba_directory(samba_dc)
    first = directory.find_users(UserQuery(base_dn=samba_dc.base_dn), SAMBA_DC_NAME)
    again = directory.find_users(UserQuery(base_dn=samba_dc.base_dn), SAMBA_DC_NAME)
    assert first and first == again  # each answer its own, not the one before
    directory.close()


@pytest.mark.samba
def test_replication_delays_come_from_the_site_links(samba_dc: SambaDC) -> None:
    directory = samba_directory(samba_dc)
    assert directory.replication_delays() == {SAMBA_DC_NAME: 0.0}  # one site
    configuration = f"CN=Configuration,{samba_dc.base_dn}"
    connection = directory.connection(SAMBA_DC_NAME)

    def search(base: str, flt: str, attrs: Sequence[str]) -> discovery.Found:
        answer: Any = connection.search(base, flt, attributes=list(attrs))
        return [(e["dn"], e["raw_attributes"]) for e in answer[2] if e["type"] == "searchResEntry"]

    links = discovery.site_links(search, configuration)
    assert [link.interval_s for link in links] == [180 * 60.0]  # DEFAULTIPSITELINK
    assert links[0].sites == (normalize(f"CN=Default-First-Site-Name,CN=Sites,{configuration}"),)
    directory.close()
