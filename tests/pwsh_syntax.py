"""A tripwire for generated PowerShell: tree-sitter-pwsh must parse it with no ERROR or MISSING
node, and it must use nothing Windows PowerShell 5.1 rejects (PowerShell 7-only syntax) nor, for
scripts meant for PowerShell 2.0 hosts, cmdlets that came with PowerShell 3.0 or later."""

from __future__ import annotations

import re
from collections.abc import Iterator

import tree_sitter
import tree_sitter_pwsh

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_pwsh.language()))

# PowerShell 7 syntax the grammar accepts: `a ? b : c`, `a ?? b`, `a && b`, `a || b`.
PS7_NODE_TYPES = frozenset(
    {"ternary_expression", "null_coalesce_expression", "pipeline_chain_tail"}
)
PS7_TEXT = (
    (re.compile(r"\?\?="), "??= assignment"),
    (re.compile(r"\$\{?\w+\}?\?\.|\)\?\."), "?. member access"),
    (re.compile(r"\?\["), "?[] index"),
    (re.compile(r"-Parallel\b", re.IGNORECASE), "ForEach-Object -Parallel"),
    (re.compile(r"^\s*clean\s*\{", re.IGNORECASE | re.MULTILINE), "clean block"),
)
# Cmdlets and parameters that PowerShell 2.0 lacks (3.0: JSON, web, CIM, workflows, ...).
PS3_PLUS = (
    "ConvertFrom-Json",
    "ConvertTo-Json",
    "Invoke-RestMethod",
    "Invoke-WebRequest",
    "Get-CimInstance",
    "Invoke-CimMethod",
    "New-CimSession",
    "Set-CimInstance",
    "Remove-CimInstance",
    "Get-CimClass",
    "Register-CimIndicationEvent",
    "Show-Command",
    "Unblock-File",
    "Get-FileHash",
    "New-TemporaryFile",
    "Get-Clipboard",
    "Set-Clipboard",
    "ConvertFrom-String",
    "Format-Hex",
    "Expand-Archive",
    "Compress-Archive",
    "Get-Uptime",
    "Test-Json",
    "Get-Error",
    "Join-String",
    "ForEach-Object -Parallel",
    "[pscustomobject]",
    "[ordered]",
    "-NoNewline",
    "$PSItem",
    "Where-Object -Property",
)


def _nodes(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    yield node
    for child in node.children:
        yield from _nodes(child)


def problems(text: str, *, powershell_2: bool = False) -> list[str]:
    """Everything wrong with ``text``, each with its line (1-based); empty when clean."""
    tree = _PARSER.parse(text.encode("utf-8"))
    found = []
    for node in _nodes(tree.root_node):
        line = node.start_point[0] + 1
        if node.is_error or node.is_missing:
            found.append(
                f"line {line}: {'missing' if node.is_missing else 'syntax error'} {node.type}"
            )
        elif node.type in PS7_NODE_TYPES:
            found.append(f"line {line}: PowerShell 7-only {node.type}")
        elif node.type == "assignment_operator" and node.text == b"??=":
            found.append(f"line {line}: PowerShell 7-only ??=")
    for pattern, what in PS7_TEXT:
        for match in pattern.finditer(text):
            found.append(
                f"line {text.count(chr(10), 0, match.start()) + 1}: PowerShell 7-only {what}"
            )
    if powershell_2:
        lowered = text.lower()
        found.extend(f"PowerShell 3+ only: {name}" for name in PS3_PLUS if name.lower() in lowered)
    return found
