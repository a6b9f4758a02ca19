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

from remediate.adapters.winrm import delivery
from remediate.adapters.winrm.scripts import Dialect, library
from remediate.model import ExchangeVersion

pytestmark = pytest.mark.winrm

SCRIPTS = [(version, name) for version in ExchangeVersion for name in library(version)]


def test_every_version_has_the_operations_it_needs() -> None:
    for version in ExchangeVersion:
        names = set(library(version))
        assert {"describe", "mailboxes", "service_states", "set_services", "purge", "disable",
                "exports", "export", "import"} <= names
        assert ("reconnect" in names) == (version is not ExchangeVersion.E2000)
        assert ("clean_database" in names) == (not version.legacy)


@pytest.mark.parametrize(("version", "operation"), SCRIPTS)
def test_script_parses_as_windows_powershell(version: ExchangeVersion, operation: str) -> None:
    script = library(version)[operation]
    powershell_2 = script.dialect is Dialect.PS2
    assert powershell_2 == (version in (ExchangeVersion.E2000, ExchangeVersion.E2003,
                                        ExchangeVersion.E2007, ExchangeVersion.E2010))
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
