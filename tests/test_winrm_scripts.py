"""Every script the WinRM adapter can send, for every Exchange version and operation, is valid
Windows PowerShell (tree-sitter-pwsh, no PowerShell 7 syntax; PowerShell 2.0 hosts get no 3.0+
cmdlets), its text is constant whatever the data, and the command line stays far below cmd.exe's
8191 characters."""

from __future__ import annotations

import base64
import re

import pytest
from hostile_values import HOSTILE
from pwsh_syntax import problems

from remediate.adapters.winrm import ScriptRunner, ServerConfig, delivery
from remediate.adapters.winrm.scripts import Dialect, library, missing_operation_hint
from remediate.errors import PermanentError
from remediate.model import ExchangeVersion

pytestmark = pytest.mark.winrm

SCRIPTS = [(version, name) for version in ExchangeVersion for name in library(version)]


def test_every_version_has_the_operations_it_needs() -> None:
    assert library(ExchangeVersion.E2000) == {}  # no WinRM on Windows 2000: refused, not run
    for version in ExchangeVersion:
        if version is ExchangeVersion.E2000:
            continue
        names = set(library(version))
        assert {
            "describe",
            "mailboxes",
            "service_states",
            "set_services",
            "purge",
            "disable",
            "exports",
            "reconnect",
        } <= names
        # 2007 has no export/import requests: the adapter refuses and says what to do instead
        has_requests = version is not ExchangeVersion.E2007
        assert {"export" in names, "import" in names} == {has_requests}
        assert (missing_operation_hint(version, "export") is None) == has_requests
        assert ("clean_database" in names) == (not version.legacy)


@pytest.mark.parametrize(("version", "operation"), SCRIPTS)
def test_script_parses_as_windows_powershell(version: ExchangeVersion, operation: str) -> None:
    script = library(version)[operation]
    powershell_2 = script.dialect is Dialect.PS2
    assert powershell_2 == (
        version
        in (
            ExchangeVersion.E2000,
            ExchangeVersion.E2003,
            ExchangeVersion.E2007,
            ExchangeVersion.E2010,
        )
    )
    assert problems(script.text, powershell_2=powershell_2) == []
    assert "Invoke-Expression" not in script.text and "iex " not in script.text.lower()
    assert "exit 0" in script.text and "exit 1" in script.text


_OUR_FUNCTION = re.compile(r"\b([A-Z][a-z]+-Remediate[A-Za-z]+)\b")


@pytest.mark.parametrize(("version", "operation"), SCRIPTS)
def test_every_function_a_script_calls_is_defined_in_it(
    version: ExchangeVersion, operation: str
) -> None:
    """The loopback endpoint reads our scripts' payloads but never runs their PowerShell, so a
    script that calls one of our functions without carrying its definition would pass unseen."""
    text = library(version)[operation].text
    defined = set(re.findall(r"function ([A-Za-z]+-Remediate[A-Za-z]+)", text))
    assert set(_OUR_FUNCTION.findall(text)) <= defined


def test_the_bootstrap_parses_and_fits_any_command_line() -> None:
    assert problems(delivery.BOOTSTRAP, powershell_2=True) == []
    line = " ".join((delivery.PROGRAM, *delivery.ARGUMENTS))
    assert len(line) < 2047  # even the oldest cmd.exe limit
    assert base64.b64decode(delivery.ARGUMENTS[-1]).decode("utf-16-le") == delivery.BOOTSTRAP


def test_the_tripwire_catches_what_it_must() -> None:
    assert problems("if ($a) { $b") != []
    assert problems("$x = $a ? 1 : 2") != []
    assert problems("$x = $a ?? 2") != []
    assert problems("Get-Item a && Get-Item b") != []
    assert problems("$x = $y?.Name") != []
    assert problems("1..3 | ForEach-Object -Parallel { $_ }") != []
    assert problems("ConvertTo-Json @{}", powershell_2=True) != []
    assert problems("ConvertTo-Json @{}") == []


@pytest.mark.security
@pytest.mark.parametrize(("version", "operation"), SCRIPTS)
def test_hostile_data_travels_beside_the_script_never_in_it(
    version: ExchangeVersion, operation: str
) -> None:
    script = library(version)[operation]
    values = {p.name: (HOSTILE if p.is_list else HOSTILE[7]) for p in script.parameters}
    sent = delivery.stdin(script, values).decode("ascii")
    lines = sent.split("\n")
    assert base64.b64decode(lines[0][1:]).decode("utf-8") == script.text
    for value in HOSTILE:
        if len(value) >= 4 and value not in script.text:
            assert value not in sent
    assert set(sent) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=,~\n")


_HOP_PATTERN = re.compile(r"function Stop-RemediateIfDoubleHop \{.*?-match '([^']+)'", re.DOTALL)


def _hop_pattern(text: str) -> re.Pattern[str]:
    found = _HOP_PATTERN.search(text)
    assert found, "the script lacks Stop-RemediateIfDoubleHop"
    return re.compile(found.group(1), re.IGNORECASE)  # -match ignores case


@pytest.mark.parametrize(
    "message",
    [
        'Exception calling "FindOne" with "0" argument(s): "An operations error occurred.\r\n"',
        "The specified domain either does not exist or could not be contacted.",
        "Logon failure: unknown user name or bad password. (0x8007052E)",
        "[exch01.corp.example] Connecting to remote server exch01.corp.example failed with the "
        "following error message : WinRM cannot process the request. The following error "
        "occurred while using Kerberos authentication: ...",
    ],
)
def test_what_a_failed_double_hop_looks_like_is_recognised(message: str) -> None:
    pattern = _hop_pattern(library(ExchangeVersion.E2003)["mailboxes"].text)
    assert pattern.search(message)


@pytest.mark.parametrize(
    "message",
    [
        'Cannot convert value "x" to type "System.Guid".',
        "The operation couldn't be performed because object 'jdoe' couldn't be found on 'DC1'.",
    ],
)
def test_other_failures_are_not_blamed_on_the_double_hop(message: str) -> None:
    assert not _hop_pattern(library(ExchangeVersion.E2016)["purge"].text).search(message)


@pytest.mark.parametrize(("version", "operation"), SCRIPTS)
def test_every_ad_search_and_shell_connection_turns_a_failed_hop_into_advice(
    version: ExchangeVersion, operation: str
) -> None:
    """ADSI and Connect-ExchangeServer are what fail in an NTLM session (no credentials to pass
    on); each is wrapped so the operator reads 'use credssp or Kerberos delegation', not a bare
    COM error."""
    text = library(version)[operation].text
    for risky in ("FindOne()", "FindAll()", "Connect-ExchangeServer -auto"):
        for line in (line for line in text.splitlines() if risky in line):
            block = text[text.index(line) - 400 : text.index(line) + 400]
            assert "try {" in block and "Stop-RemediateIfDoubleHop $_" in block, line


def test_a_powershell_1_host_is_refused_by_the_bootstrap_with_what_to_install() -> None:
    """PowerShell 1.0 has no $PSVersionTable; the bootstrap checks it before anything else and
    answers with a refusal the runner turns into one line saying what to install. (PowerShell
    1.0 itself is not available here: the check's wording is what 1.0 parses, unverified.)"""
    first = delivery.BOOTSTRAP.splitlines()[:5]
    assert first[1] == "if ($null -eq $PSVersionTable) {" and first[3] == "    exit 3"
    assert "-ExecutionPolicy" not in delivery.ARGUMENTS  # powershell.exe 1.0 has no such switch
    config = ServerConfig(
        host="exch07.corp.example",
        version=ExchangeVersion.E2007,
        identity="svc",
        password=lambda: "unused",
    )
    stdout = f"REMEDIATE-REFUSED {delivery.PS1_REFUSAL}\r\n".encode()
    with pytest.raises(PermanentError) as refused:
        ScriptRunner(config)._result(library(ExchangeVersion.E2007)["describe"], stdout, b"", 3)
    assert "Windows PowerShell 1.0" in str(refused.value) and "KB968930" in str(refused.value)
    assert "\n" not in str(refused.value)
