"""Microsoft's documentation as the oracle for our PowerShell: every command a generated script
runs, read from its tree-sitter-pwsh tree, checked against facts extracted from the Exchange
PowerShell reference (``tests/facts/exchange_cmdlets.json``, by
``scripts/extract_cmdlet_facts.py``; Exchange 2007 from its own reference,
``exchange2007_cmdlets.json``) and the Exchange 2003 SDK's WMI reference
(``exchange2003_wmi.json``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import tree_sitter
import tree_sitter_pwsh

from remediate.model import ExchangeVersion

FACTS = Path(__file__).parent / "facts"
_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_pwsh.language()))

# PowerShell's common parameters (about_CommonParameters) and the risk-mitigation switches, which
# every cmdlet accepts whether or not its syntax block lists them.
COMMON = frozenset(
    {
        "Debug",
        "ErrorAction",
        "ErrorVariable",
        "OutBuffer",
        "OutVariable",
        "PipelineVariable",
        "Verbose",
        "WarningAction",
        "WarningVariable",
    }
)
# The Windows PowerShell 2.0 cmdlets our scripts use (Microsoft.PowerShell.* modules), and the
# one function the Exchange 2010+ shell's RemoteExchange.ps1 defines.
POWERSHELL = frozenset(
    {
        "Add-PSSnapin",
        "Copy-Item",
        "ForEach-Object",
        "Get-ChildItem",
        "Get-Command",
        "Get-Content",
        "Get-Date",
        "Get-Item",
        "Get-ItemProperty",
        "Get-Service",
        "Get-WmiObject",
        "Join-Path",
        "Move-Item",
        "New-Item",
        "New-Object",
        "Out-Null",
        "Remove-Item",
        "Select-Object",
        "Split-Path",
        "Start-Service",
        "Start-Sleep",
        "Stop-Service",
        "Test-Path",
        "Where-Object",
        "Write-Error",
        "ConvertFrom-Json",
        "ConvertTo-Json",
        "Connect-ExchangeServer",
    }
)
_PLAIN_NAME = re.compile(r"^[A-Za-z][\w-]*$")
# Loops over targets (a while loop polls: one enumeration per poll is the point of it).
LOOPS = frozenset({"foreach_statement", "for_statement"})
# Cmdlets that list a whole server or store: once per script, never once per target.
ENUMERATIONS = frozenset(
    {
        "Get-WmiObject",
        "Get-MailboxStatistics",
        "Get-MailboxDatabase",
        "Get-ExchangeServer",
        "Get-Service",
        "Get-Mailbox",
        "Get-User",
        "Get-Recipient",
    }
)


@dataclass(frozen=True, slots=True)
class Call:
    """One command as written: its name, the parameters named, how many bare arguments."""

    name: str
    parameters: tuple[str, ...]
    arguments: int
    line: int
    loop_depth: int
    piped: bool = False  # not first in its pipeline: it receives pipeline input
    function: str | None = None  # the function it is written in (None: the script's body)


@cache
def cmdlet_facts() -> dict[str, dict[str, Any]]:
    """Cmdlet -> facts, 2010+ from the MicrosoftDocs extract, 2007 from its own reference."""
    merged: dict[str, dict[str, Any]] = {}
    for name in ("exchange_cmdlets.json", "exchange2007_cmdlets.json"):
        for cmdlet, facts in json.loads((FACTS / name).read_text())["cmdlets"].items():
            merged.setdefault(cmdlet, {"by_version": {}})
            for version in facts["applicable"]:
                merged[cmdlet]["by_version"][version] = facts
    return merged


@cache
def wmi_facts() -> dict[str, Any]:
    classes: dict[str, Any] = json.loads((FACTS / "exchange2003_wmi.json").read_text())["classes"]
    return classes


def _nodes(node: tree_sitter.Node, depth: int = 0) -> Iterator[tuple[tree_sitter.Node, int]]:
    yield node, depth
    for child in node.children:
        # A loop's body runs once per item; what it iterates over is evaluated once.
        inner = node.type in LOOPS and child.type == "statement_block"
        yield from _nodes(child, depth + 1 if inner else depth)


def _function_of(node: tree_sitter.Node) -> str | None:
    parent = node.parent
    while parent is not None:
        if parent.type == "function_statement":
            return next((_text(c) for c in parent.children if c.type == "function_name"), None)
        parent = parent.parent
    return None


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8")


def _switch_like(cmdlet: str, parameter: str) -> bool:
    """Whether ``parameter`` of ``cmdlet`` takes no value (a switch) in any documented version."""
    for facts in cmdlet_facts().get(cmdlet, {}).get("by_version", {}).values():
        for parameter_set in facts["parameter_sets"]:
            found = parameter_set["parameters"].get(parameter)
            if found is not None:
                return not found["takes_value"]
    return parameter in {"Confirm", "WhatIf", "Force"}


def calls(text: str) -> list[Call]:
    """Every command with a plain name in ``text``, in order."""
    tree = _PARSER.parse(text.encode("utf-8"))
    found = []
    for node, depth in _nodes(tree.root_node):
        if node.type != "command":
            continue
        name_node = node.child_by_field_name("command_name") or next(
            (c for c in node.children if c.type == "command_name"), None
        )
        if name_node is None:
            continue
        name = _text(name_node)
        if not _PLAIN_NAME.match(name):
            continue  # `& $path`, `. (Join-Path ...)`: a program or script, not a cmdlet
        parameters: list[str] = []
        arguments = 0
        expecting_value = False
        elements = next((c for c in node.children if c.type == "command_elements"), None)
        for element in elements.children if elements else ():
            if element.type == "command_argument_sep":
                if _text(element) == ":" and parameters:
                    expecting_value = True
                continue
            if element.type == "command_parameter":
                parameter = _text(element).lstrip("-").rstrip(":")
                parameters.append(parameter)
                expecting_value = not _switch_like(name, parameter)
                continue
            if expecting_value:
                expecting_value = False
            else:
                arguments += 1
        piped = (
            node.prev_named_sibling is not None
            and node.parent is not None
            and node.parent.type == "pipeline_chain"
        )
        found.append(
            Call(
                name,
                tuple(parameters),
                arguments,
                node.start_point[0] + 1,
                depth,
                piped,
                _function_of(node),
            )
        )
    return found


def functions(text: str) -> frozenset[str]:
    """The names of the functions ``text`` defines."""
    tree = _PARSER.parse(text.encode("utf-8"))
    return frozenset(
        _text(child)
        for node, _ in _nodes(tree.root_node)
        if node.type == "function_statement"
        for child in node.children
        if child.type == "function_name"
    )


def _canonical(name: str, known: Mapping[str, object]) -> str | None:
    lowered = {key.lower(): key for key in known}
    return lowered.get(name.lower())


def check_cmdlet(call: Call, version: ExchangeVersion) -> list[str]:
    """What the documentation says is wrong with this call on this version (empty: nothing)."""
    cmdlet = _canonical(call.name, cmdlet_facts())
    where = f"line {call.line}: {call.name}"
    if cmdlet is None:
        return [f"{where}: not a cmdlet of the Exchange reference for any version"]
    facts = cmdlet_facts()[cmdlet]["by_version"].get(version.value)
    if facts is None:
        documented = ", ".join(sorted(cmdlet_facts()[cmdlet]["by_version"]))
        return [
            f"{where}: not documented for Exchange {version.value} (documented for {documented})"
        ]
    problems = []
    named = [p for p in call.parameters if p not in COMMON]
    for parameter in named:
        known = _canonical(parameter, facts["parameters"])
        if known is None:
            problems.append(f"{where} -{parameter}: no such parameter in the reference")
        elif version.value not in facts["parameters"][known]["applicable"]:
            problems.append(
                f"{where} -{parameter}: documented only for Exchange "
                f"{', '.join(facts['parameters'][known]['applicable'])}"
            )
    if problems:
        return problems
    piped = frozenset(
        name
        for name, parameter in facts["parameters"].items()
        if call.piped and parameter.get("pipeline")
    )
    if not any(
        _set_allows(parameter_set["parameters"], named, call.arguments, piped)
        for parameter_set in facts["parameter_sets"]
    ):
        sets = "; ".join(parameter_set["name"] for parameter_set in facts["parameter_sets"])
        problems.append(
            f"{where} -{' -'.join(named)} (+{call.arguments} positional): no "
            f"parameter set allows this combination (sets: {sets})"
        )
    return problems


def _set_allows(
    parameters: Mapping[str, Mapping[str, bool]],
    named: list[str],
    arguments: int,
    piped: frozenset[str],
) -> bool:
    given = set(piped)
    for name in named:
        known = _canonical(name, parameters)
        if known is None:
            return False
        given.add(known)
    positional = [
        name for name, facts in parameters.items() if facts["positional"] and name not in given
    ]
    if arguments > len(positional):
        return False
    given.update(positional[:arguments])
    return all(name in given for name, facts in parameters.items() if facts["required"])


# Which variables hold which WMI class in the Exchange 2000/2003 scripts: the scripts keep to
# these names so that every member they read can be checked against the SDK.
WMI_HOLDERS = {
    "$mailbox": "Exchange_Mailbox",
    "$item.mailbox": "Exchange_Mailbox",
    "$dc": "Exchange_DSAccessDC",
}


def wmi_classes(text: str) -> list[tuple[int, str]]:
    """(line, class) of every ``Get-WmiObject -Class 'X'`` in ``text``."""
    tree = _PARSER.parse(text.encode("utf-8"))
    found = []
    for node, _ in _nodes(tree.root_node):
        if node.type != "command" or _text(node.children[0]).lower() != "get-wmiobject":
            continue
        elements = [c for c in node.children if c.type == "command_elements"]
        words = [_text(c) for c in elements[0].children if c.type != "command_argument_sep"]
        for index, word in enumerate(words[:-1]):
            if word.lower() == "-class":
                found.append((node.start_point[0] + 1, words[index + 1].strip("'\"")))
    return found


def wmi_members(text: str) -> list[tuple[int, str, str]]:
    """(line, class, member) for every member read or method called on a WMI_HOLDERS variable."""
    tree = _PARSER.parse(text.encode("utf-8"))
    found = []
    for node, _ in _nodes(tree.root_node):
        if node.type not in ("member_access", "invocation_expression"):
            continue
        owner = node.children[0]
        member = next((c for c in node.children if c.type == "member_name"), None)
        holder = WMI_HOLDERS.get(_text(owner))
        if holder is not None and member is not None:
            found.append((node.start_point[0] + 1, holder, _text(member)))
    return found


def check_wmi(text: str, version: ExchangeVersion) -> list[str]:
    problems = []
    classes = wmi_facts()
    for line, name in wmi_classes(text):
        known = classes.get(name)
        if known is None:
            problems.append(f"line {line}: WMI class {name} is not in the Exchange 2003 SDK facts")
        elif version.value not in known["versions"]:
            problems.append(
                f"line {line}: WMI class {name} does not exist on Exchange "
                f"{version.value} (provider {known['provider']}: "
                f"{', '.join(known['versions'])})"
            )
    for line, name, member in wmi_members(text):
        known = classes[name]
        if member not in known["properties"] and member not in known["methods"]:
            problems.append(f"line {line}: {name} has no member {member} in the SDK")
    return problems


def enumerations_in_loops(text: str) -> list[str]:
    """Calls inside a loop over targets to an enumeration cmdlet, or to one of the script's
    functions that (directly or through others) runs one."""
    found = calls(text)
    enumerating = {
        call.function for call in found if call.name in ENUMERATIONS and call.function is not None
    }
    while True:
        more = {
            call.function
            for call in found
            if call.name in enumerating and call.function is not None
        } - enumerating
        if not more:
            break
        enumerating |= more
    return [
        f"line {call.line}: {call.name} inside a loop"
        + ("" if call.name in ENUMERATIONS else " (it enumerates)")
        for call in found
        if call.loop_depth > 0 and (call.name in ENUMERATIONS or call.name in enumerating)
    ]
