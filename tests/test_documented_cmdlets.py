"""Every generated script, for every Exchange version, uses only what Microsoft documents for
that version: cmdlets and parameters of the Exchange PowerShell reference, in a combination one
of the cmdlet's parameter sets allows; WMI classes and members of the Exchange 2003 SDK."""

from __future__ import annotations

import json

import pytest
from documented import (
    FACTS,
    POWERSHELL,
    Call,
    calls,
    check_cmdlet,
    check_wmi,
    cmdlet_facts,
    enumerations_in_loops,
    functions,
    wmi_members,
)

from remediate.adapters.winrm.scripts import library
from remediate.model import ExchangeVersion

CMDLET_VERSIONS = [v for v in ExchangeVersion if not v.legacy]
LEGACY_VERSIONS = [v for v in ExchangeVersion if v.legacy]


def _script_problems(version: ExchangeVersion) -> list[str]:
    problems = []
    for script in library(version).values():
        own = functions(script.text)
        for call in calls(script.text):
            if call.name in own or call.name in POWERSHELL:
                continue
            if version.legacy:
                problems.append(
                    f"{script.id} line {call.line}: {call.name} is not a Windows "
                    "PowerShell 2.0 cmdlet (Exchange 2000/2003 have no cmdlets)"
                )
                continue
            problems.extend(f"{script.id} {problem}" for problem in check_cmdlet(call, version))
        if version.legacy:
            problems.extend(f"{script.id} {problem}" for problem in check_wmi(script.text, version))
    return problems


@pytest.mark.parametrize("version", CMDLET_VERSIONS, ids=str)
def test_every_cmdlet_script_uses_only_what_the_reference_documents_for_its_version(
    version: ExchangeVersion,
) -> None:
    assert _script_problems(version) == []


@pytest.mark.parametrize("version", LEGACY_VERSIONS, ids=str)
def test_every_legacy_script_uses_only_sdk_documented_wmi_classes_and_members(
    version: ExchangeVersion,
) -> None:
    assert _script_problems(version) == []


def test_the_checker_finds_an_undocumented_parameter_and_a_forbidden_combination() -> None:
    undocumented = Call("Remove-StoreMailbox", ("Database", "Identity", "Permanent"), 0, 1, 0)
    assert any(
        "-Permanent: no such parameter" in p
        for p in check_cmdlet(undocumented, ExchangeVersion.E2016)
    )
    # -ValidateOnly has a parameter set of its own, which takes no -User.
    combination = Call("Connect-Mailbox", ("Identity", "Database", "User", "ValidateOnly"), 0, 1, 0)
    assert any(
        "no parameter set allows" in p for p in check_cmdlet(combination, ExchangeVersion.E2016)
    )
    too_old = Call("Remove-StoreMailbox", ("Database", "Identity", "MailboxState"), 0, 1, 0)
    assert any(
        "not documented for Exchange 2007" in p
        for p in check_cmdlet(too_old, ExchangeVersion.E2007)
    )
    filtered = Call("Get-MailboxStatistics", ("Database", "Filter"), 0, 1, 0)
    assert any(
        "documented only for Exchange 2013" in p
        for p in check_cmdlet(filtered, ExchangeVersion.E2010)
    )


def test_the_checker_reads_positional_arguments_and_values_from_the_tree() -> None:
    found = calls("Connect-Mailbox $guid -Database:$db -Confirm:$false -User $u\n")
    assert found == [Call("Connect-Mailbox", ("Database", "Confirm", "User"), 1, 1, 0)]
    assert check_cmdlet(found[0], ExchangeVersion.E2010) == []


def test_the_wmi_checker_finds_a_member_the_sdk_does_not_list() -> None:
    text = "$mailbox = $null\n$x = $mailbox.TotalItemCount\n[void]$mailbox.Purge()\n"
    assert wmi_members(text) == [
        (2, "Exchange_Mailbox", "TotalItemCount"),
        (3, "Exchange_Mailbox", "Purge"),
    ]
    assert check_wmi(text, ExchangeVersion.E2003) == [
        "line 2: Exchange_Mailbox has no member TotalItemCount in the SDK"
    ]


def test_the_legacy_scripts_keep_to_the_variable_names_the_wmi_check_reads() -> None:
    texts = "\n".join(script.text for script in library(ExchangeVersion.E2003).values())
    members = {member for _, _, member in wmi_members(texts)}
    assert {"MailboxGUID", "DateDiscoveredAbsentInDS", "LegacyDN", "Purge", "Reconnect"} <= members


def test_the_facts_come_from_a_recorded_source_and_cover_every_version() -> None:
    extracted = json.loads((FACTS / "exchange_cmdlets.json").read_text())
    assert extracted["source"]["repository"].endswith("MicrosoftDocs/office-docs-powershell")
    assert len(extracted["source"]["commit"]) == 40
    versions = {v for facts in cmdlet_facts().values() for v in facts["by_version"]}
    assert {v.value for v in CMDLET_VERSIONS} <= versions


@pytest.mark.parametrize("version", [v for v in ExchangeVersion if library(v)], ids=str)
def test_no_script_enumerates_inside_a_loop_over_its_targets(version: ExchangeVersion) -> None:
    """A 1,000-mailbox batch must not list the server's mailboxes (or services, databases)
    1,000 times: each script enumerates once, into a hashtable, and looks up in that."""
    found = {
        script.id: problems
        for script in library(version).values()
        if (problems := enumerations_in_loops(script.text))
    }
    assert found == {}


def test_the_loop_check_follows_the_scripts_own_functions() -> None:
    text = (
        "function Get-All {\n    return @(Get-Service)\n}\n"
        "function Find-One {\n    param($n)\n    return Get-All\n}\n"
        "foreach ($n in $names) {\n    Find-One $n\n}\n"
    )
    assert enumerations_in_loops(text) == ["line 9: Find-One inside a loop (it enumerates)"]
