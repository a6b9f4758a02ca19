"""The WinRM adapter against the loopback endpoint: data arrives byte for byte, Windows' quirks
are handled (CLIXML, code pages, OperationTimeout, output over several Receives), and each way of
failing gives an error that names the server and says what to do."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import winrm
import winrm.transport
from hostile_values import HOSTILE
from kb_support import load, scenario
from winrm_endpoint import Endpoint, EndpointOptions, soap
from winrm_endpoint import clixml as windows
from winrm_endpoint.auth import ntlm_accounts
from winrm_endpoint.certs import make_pki
from winrm_endpoint.exchange_host import DecodedCall
from winrm_endpoint.shells import HostResult
from winrm_support import PASSWORD, USER, Site, as_read, serve, server_config

from remediate.adapters.winrm import ScriptRunner, WinRmExchange
from remediate.adapters.winrm.clixml import clean
from remediate.adapters.winrm.config import Transport
from remediate.adapters.winrm.scripts import library
from remediate.errors import PermanentError, Refused, TransientError
from remediate.model import ServiceState
from remediate.ports import ManualActionRequired

pytestmark = pytest.mark.winrm


@pytest.fixture(params=["2003", "2016"])
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    with serve(load(scenario("kb278447", 1, seed=3, version=request.param))) as served:
        yield served


def _only(site: Site) -> tuple[str, Endpoint]:
    ((name, endpoint),) = site.endpoints.items()
    return name, endpoint


# -- data ----------------------------------------------------------------------------------------


@pytest.mark.security
def test_hostile_values_reach_the_server_byte_for_byte_and_never_as_script(site: Site) -> None:
    name, endpoint = _only(site)
    exchange = site.exchange()
    with pytest.raises(PermanentError, match="no service"):
        exchange.set_services(name, HOSTILE, ServiceState.STOPPED)
    call = site.hosts[name].calls[-1]
    assert len(HOSTILE) >= 100
    assert call.parameters["names"] == HOSTILE
    assert call.parameters["state"] == "stopped"
    assert call.script_text == library(site.configs[0].version)["set_services"].text
    command = endpoint.commands[-1]
    assert command.script is not None
    constant = command.line + command.script + call.script_text  # what we always send
    sent = (command.line, command.script, call.script_text, command.stdin_bytes.decode())
    for value in HOSTILE:
        if len(value) >= 4 and value not in constant:
            assert not any(value in text for text in sent)


def test_the_script_goes_to_a_plain_stdin_pipe_not_a_console(site: Site) -> None:
    """pywinrm's run_command defaults to WINRS_CONSOLEMODE_STDIN=TRUE, where a console-mode
    pipe can cut a long line; our script arrives on stdin, so it asks for a plain pipe."""
    name, endpoint = _only(site)
    site.exchange().service_states(name, ["MSExchangeIS"])
    assert endpoint.commands and all(not c.console_mode_stdin for c in endpoint.commands)


@pytest.mark.security
@pytest.mark.parametrize("value", [HOSTILE[i] for i in (0, 1, 2, 9, 12, 21, -4, -3, -2, -1)])
def test_a_hostile_string_parameter_arrives_intact(site: Site, value: str) -> None:
    name, _ = _only(site)
    runner = ScriptRunner(site.configs[0])
    found = runner.run(
        library(site.configs[0].version)["exports"], {"directory": value, "guids": []}
    )
    assert found == {}
    assert site.hosts[name].calls[-1].parameters["directory"] == value


def test_non_ascii_names_come_back_exactly(site: Site) -> None:
    name, _ = _only(site)
    read = site.exchange().mailboxes(name)
    assert as_read(read) == as_read(site.world.exchange.mailboxes(name))
    assert any(not box.display_name.isascii() for box in read)


# -- Windows' ways ---------------------------------------------------------------------------------


def test_output_too_big_for_one_receive_arrives_whole() -> None:
    world = load(scenario("kb278447", 7, seed=7, version="2016"))
    with serve(world, EndpointOptions(receive_chunk_bytes=1500)) as site:
        name, endpoint = _only(site)
        read = site.exchange().mailboxes(name)
        assert as_read(read) == as_read(world.exchange.mailboxes(name))
        assert endpoint.calls(soap.RECEIVE) >= 5


def test_operation_timeouts_are_waited_out_up_to_our_own_deadline(site: Site) -> None:
    name, endpoint = _only(site)
    endpoint.options.receive_cap_s = 0.1

    def slow(call: DecodedCall) -> None:
        time.sleep(1.0)

    site.hosts[name].before_run = slow
    states = ScriptRunner(site.configs[0]).run(
        library(site.configs[0].version)["service_states"],
        {"names": list(site.configs[0].version.transport_services)},
    )
    assert set(states.values()) == {"running"}
    assert endpoint.calls(soap.RECEIVE) >= 4  # pywinrm would have retried these forever

    impatient = replace(site.configs[0], deadline_s=0.3)
    with pytest.raises(TransientError) as raised:
        WinRmExchange([impatient]).service_states(name, ["MSExchangeIS"])
    text = str(raised.value)
    assert name in text and "did not finish within 0.3 s" in text and "deadline_s" in text


def test_a_powershell_error_becomes_a_clean_message(site: Site) -> None:
    name, _ = _only(site)
    with pytest.raises(PermanentError) as raised:
        ScriptRunner(site.configs[0]).run(
            library(site.configs[0].version)["purge"], {"guids": ["not-a-guid"], "stores": [""]}
        )
    text = str(raised.value)
    assert name in text and 'Cannot convert value "not-a-guid" to type "System.Guid"' in text
    assert "CLIXML" not in text and "<Objs" not in text and "Preparing modules" not in text
    assert "CategoryInfo" not in text and "FullyQualifiedErrorId" not in text


def test_a_server_side_refusal_is_permanent_and_says_why(site: Site) -> None:
    name, _ = _only(site)
    connected = [box.guid for box in site.world.exchange.mailboxes(name) if box.owner]
    with pytest.raises(PermanentError) as raised:
        site.exchange().purge_mailboxes(name, connected[:1])
    assert name in str(raised.value) and "is not disconnected" in str(raised.value)


def test_a_transient_server_fault_is_transient(site: Site) -> None:
    name, _ = _only(site)
    site.world.faults.fail("exchange.service_states", "transient")
    with pytest.raises(TransientError, match="connection reset"):
        site.exchange().service_states(name, ["MSExchangeIS"])
    assert site.exchange().service_states(name, ["MSExchangeIS"]) == {
        "MSExchangeIS": ServiceState.RUNNING
    }


class _Echo:
    def run(self, script: str, stdin: object) -> HostResult:
        return HostResult(stdout=f"{script}\n€\n")


def test_the_endpoint_answers_as_windows_does() -> None:
    with ntlm_accounts({USER: PASSWORD}):
        endpoint = Endpoint(_Echo()).start()
        try:
            session = winrm.Session(endpoint.url, auth=(USER, PASSWORD), transport="ntlm")
            first = session.run_ps("'hi'")
            assert first.status_code == 0
            assert first.std_out == b"'hi'\r\n?\r\n"  # code page 437: no euro sign, CRLF
            assert b"Preparing modules for first use." in first.std_err  # progress noise, rc 0
            too_long = session.run_ps("x" * 3100)
            assert too_long.status_code == 1
            assert too_long.std_err == b"The command line is too long.\r\n"
            assert session.run_ps("x" * 3000).status_code == 0
            unknown = session.run_cmd("frobnicate")
            assert unknown.status_code == 1 and b"is not recognized" in unknown.std_err
            assert all(r.encrypted for r in endpoint.requests)
        finally:
            endpoint.stop()


# -- failures that name the server and say what to do ---------------------------------------------


@pytest.mark.security
def test_wrong_password(site: Site) -> None:
    name, _ = _only(site)
    wrong = replace(site.configs[0], password=lambda: "wrong")
    with pytest.raises(PermanentError) as raised:
        WinRmExchange([wrong]).servers()
    text = str(raised.value)
    assert name in text and "rejected the credentials of CORP\\admin" in text
    assert "password_env" in text


def test_unreachable_host() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with ntlm_accounts({USER: PASSWORD}):
        endpoint = Endpoint(_Echo())
        config = replace(server_config("EXCH09", endpoint.start(), "2016"), port=port)
        endpoint.stop()
        with pytest.raises(TransientError) as raised:
            WinRmExchange([config]).servers()
    text = str(raised.value)
    assert "EXCH09" in text and f"cannot connect to http://127.0.0.1:{port}/wsman" in text
    assert "WinRM listens" in text


@pytest.fixture(scope="module")
def pki_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    good, other = make_pki(), make_pki("another CA")
    files = {"ca": good.ca_pem, "other_ca": other.ca_pem}
    paths = {}
    for key, data in files.items():
        paths[key] = folder / f"{key}.pem"
        paths[key].write_bytes(data)
    paths["cert"], paths["key"] = folder / "server.pem", folder / "server.key"
    paths["cert"].write_bytes(good.server_cert_pem)
    paths["key"].write_bytes(good.server_key_pem)
    return paths


@pytest.mark.security
@pytest.mark.parametrize("transport", ["ntlm", "basic"])
def test_https_with_the_test_ca(pki_files: dict[str, Path], transport: Transport) -> None:
    world = load(scenario("kb278447", 1, seed=3, version="2016"))
    tls = (pki_files["cert"].read_bytes(), pki_files["key"].read_bytes())
    options = EndpointOptions(auth="basic" if transport == "basic" else "ntlm", tls=tls)
    with serve(world, options) as site:
        name, endpoint = _only(site)
        good = replace(site.configs[0], ca_file=pki_files["ca"], transport=transport)
        assert WinRmExchange([good]).servers()[0].name == name
        assert endpoint.requests and not any(r.encrypted for r in endpoint.requests)  # TLS does it

        untrusted = replace(good, ca_file=pki_files["other_ca"])
        with pytest.raises(PermanentError) as raised:
            WinRmExchange([untrusted]).servers()
        text = str(raised.value)
        assert name in text and "certificate https://127.0.0.1" in text
        assert "not issued by a CA we trust" in text
        assert "ca_file" in text


@pytest.mark.parametrize("transport", ["kerberos", "credssp"])
def test_a_transport_whose_package_is_missing_says_what_to_install(
    site: Site, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(winrm.transport, "HAVE_KERBEROS", False)
    monkeypatch.setattr(winrm.transport, "HAVE_CREDSSP", False)
    name, _ = _only(site)
    config = replace(site.configs[0], transport=transport)  # type: ignore[arg-type]
    with pytest.raises(PermanentError) as raised:
        WinRmExchange([config]).servers()
    text = str(raised.value)
    assert name in text and "not installed" in text
    assert f"pip install 'remediate[{transport}]'" in text


@pytest.mark.security
def test_basic_over_http_is_refused_before_anything_is_sent() -> None:
    world = load(scenario("kb278447", 1, seed=3, version="2016"))
    with serve(world, EndpointOptions(auth="basic")) as site:
        config = replace(site.configs[0], transport="basic")
        with pytest.raises(PermanentError, match="Basic over http"):
            WinRmExchange([config]).servers()
        assert site.endpoints[config.server].requests == []


def test_exchange_2000_is_refused_with_what_to_do_before_anything_is_sent() -> None:
    world = load(scenario("kb278447", 1, seed=3, version="2000"))
    with serve(world) as site:
        with pytest.raises(Refused, match=r"no WinRM.*Follow KB278447 by hand") as refused:
            site.exchange()
        assert refused.value.exit_code == 3
        assert all(endpoint.requests == [] for endpoint in site.endpoints.values())


def test_the_2003_cleanup_agent_is_a_manual_step_with_the_fakes_instructions() -> None:
    world = load(scenario("kb842101", 1, seed=3, version="2003"))
    with serve(world) as site:
        name, endpoint = _only(site)
        exchange = site.exchange()
        store_dns = [store.dn for store in exchange.stores(name)]
        with pytest.raises(ManualActionRequired) as adapter:
            exchange.run_cleanup_agent(name, store_dns)
        with pytest.raises(ManualActionRequired) as fake:
            world.exchange.run_cleanup_agent(name, store_dns)
        assert adapter.value.instructions == fake.value.instructions
        assert adapter.value.rehearse is None  # a real server: the operator acts
        assert endpoint.calls() == 1  # reading the stores; the agent itself has no API
        with pytest.raises(PermanentError, match="no store with this DN"):
            exchange.run_cleanup_agent(name, ["CN=Nowhere,DC=corp,DC=example"])


def test_clixml_keeps_what_went_wrong_and_drops_where_and_progress() -> None:
    stderr = windows.document(
        progress=True,
        error_lines=[
            "At line:1 char:5",
            "+ Get-Mailbox -Identity 'x'",
            "+     ~~~~~~~~~~~",
            "The operation couldn't be performed because object 'x' couldn't be found on "
            "'DC2.corp.example'.",
            *windows.error_record("second line: <&> \u2019 \u20ac")[0:1],
            "    + CategoryInfo          : NotSpecified: (:) [], ManagementObjectNotFoundException",
            "    + FullyQualifiedErrorId : 6A7C6F8,Microsoft.Exchange.Management.GetMailbox",
        ],
    )
    assert clean(stderr) == (
        "The operation couldn't be performed because object 'x' couldn't be found on "
        "'DC2.corp.example'.\nsecond line: <&> \u2019 \u20ac"
    )
    assert clean(b"The command line is too long.\r\n") == "The command line is too long."
