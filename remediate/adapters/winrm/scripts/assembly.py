"""How a script is put together: header, parameters, prelude, the operation's body, the main
block with its exit codes. Two dialects: Windows PowerShell 2.0 (Exchange 2000-2010 hosts: one
base64 argument per parameter, a minimal JSON writer) and 3.0+ (Exchange 2013 and later: one
base64 JSON argument, ConvertFrom-Json/ConvertTo-Json)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MARKER = "# remediate-script: "


class Dialect(StrEnum):
    PS2 = "ps2"
    PS5 = "ps5"


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    is_list: bool = False


@dataclass(frozen=True, slots=True)
class Script:
    id: str
    operation: str
    dialect: Dialect
    parameters: tuple[Parameter, ...]
    text: str


# Exit codes of every script (the adapter reads them; see runner.py).
# A WinRS session authenticated by NTLM (or Kerberos without delegation) holds no credentials the
# server could pass on: its ADSI binds to a DC and its Exchange shell's connection fail (the
# double hop); Stop-RemediateIfDoubleHop turns the errors that shows as into a refusal that says
# so. A refusal's exit code is 3.
EXIT_OK, EXIT_ERROR, EXIT_REFUSED, EXIT_TRANSIENT = 0, 1, 3, 4

_DECODE = r"""
function Read-RemediateText {
    param([string]$Encoded)
    return [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($Encoded))
}

function Read-RemediateList {
    param([string]$Encoded)
    $items = New-Object System.Collections.ArrayList
    foreach ($part in $Encoded.Split(',')) {
        if ($part.Length -gt 0) {
            [void]$items.Add((Read-RemediateText $part.Substring(1)))
        }
    }
    return ,$items.ToArray()
}
"""

_JSON_PS2 = r"""
function ConvertTo-RemediateJson {
    param($Value)
    if ($null -eq $Value) {
        return 'null'
    }
    if ($Value -is [bool]) {
        if ($Value) {
            return 'true'
        }
        return 'false'
    }
    if ($Value -is [int] -or $Value -is [long] -or $Value -is [uint32] -or $Value -is [uint64]) {
        return [string]$Value
    }
    if ($Value -is [datetime]) {
        return '"' + $Value.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ') + '"'
    }
    if ($Value -is [System.Collections.IDictionary]) {
        $members = @()
        foreach ($key in $Value.Keys) {
            $members += (ConvertTo-RemediateJson ([string]$key)) + ':' + (ConvertTo-RemediateJson $Value[$key])
        }
        return '{' + ($members -join ',') + '}'
    }
    if (($Value -is [System.Collections.IEnumerable]) -and -not ($Value -is [string])) {
        $elements = @()
        foreach ($element in $Value) {
            $elements += ConvertTo-RemediateJson $element
        }
        return '[' + ($elements -join ',') + ']'
    }
    $builder = New-Object System.Text.StringBuilder
    [void]$builder.Append('"')
    foreach ($char in ([string]$Value).ToCharArray()) {
        $code = [int]$char
        if ($char -eq '"') {
            [void]$builder.Append('\"')
        }
        elseif ($char -eq '\') {
            [void]$builder.Append('\\')
        }
        elseif ($code -lt 32 -or $code -gt 126) {
            [void]$builder.Append('\u' + $code.ToString('x4'))
        }
        else {
            [void]$builder.Append($char)
        }
    }
    [void]$builder.Append('"')
    return $builder.ToString()
}
"""

_JSON_PS5 = r"""
function ConvertTo-RemediateJson {
    param($Value)
    return (ConvertTo-Json -InputObject $Value -Compress -Depth 8)
}
"""

_RESULTS = r"""
function Write-RemediateResult {
    param([string]$Kind, $Value)
    [Console]::Out.WriteLine('REMEDIATE-' + $Kind + ' ' + (ConvertTo-RemediateJson $Value))
}

function Stop-RemediateRefused {
    param([string]$Message, [string]$Target)
    Write-RemediateResult 'REFUSED' @{ message = $Message; target = $Target }
    exit 3
}

function Stop-RemediateDoubleHop {
    param([string]$What, [string]$Detail)
    Stop-RemediateRefused ($What + ' failed on ' + $env:COMPUTERNAME + ' (' + $Detail.Trim() + '): this WinRM session has no credentials to pass on to a domain controller or another server (the double hop of an NTLM session); use transport = "credssp" (HTTPS), or Kerberos with delegation to ' + $env:COMPUTERNAME) $env:COMPUTERNAME
}

function Stop-RemediateIfDoubleHop {
    param($Failure, [string]$What)
    $text = [string]$Failure.Exception.Message
    if ($text -match 'operations error|0x80072020|could not be contacted|0x8007054B|logon failure|0x8007052E|Access is denied|0x80070005|Kerberos') {
        Stop-RemediateDoubleHop $What $text
    }
}

function Test-RemediateTransient {
    param($Failure)
    $text = [string]$Failure.Message
    return ($text -match 'RPC server is unavailable|timed out|temporarily|server is busy|0x800706BA')
}
"""

_MAIN = r"""
try {
    $result = Invoke-RemediateOperation $Parameters
    Write-RemediateResult 'RESULT' $result
    exit 0
}
catch {
    if (Test-RemediateTransient $_.Exception) {
        Write-RemediateResult 'TRANSIENT' @{ message = [string]$_.Exception.Message }
        exit 4
    }
    Write-Error -ErrorRecord $_ -ErrorAction Continue
    exit 1
}
"""


def _parameters_block(dialect: Dialect, parameters: tuple[Parameter, ...]) -> str:
    if dialect is Dialect.PS5:
        return (
            "param(\n    [string]$Payload\n)\n"
            + _DECODE
            + "\n$Parameters = ConvertFrom-Json (Read-RemediateText $Payload)\n"
        )
    if not parameters:
        return _DECODE + "\n$Parameters = @{}\n"
    declared = ",\n".join(f"    [string]${p.name}" for p in parameters)
    readers = "\n".join(
        f"    '{p.name}' = Read-Remediate{'List' if p.is_list else 'Text'} ${p.name}"
        for p in parameters
    )
    return f"param(\n{declared}\n)\n{_DECODE}\n$Parameters = @{{\n{readers}\n}}\n"


def assemble(
    script_id: str,
    *,
    operation: str,
    dialect: Dialect,
    parameters: tuple[Parameter, ...],
    setup: str,
    body: str,
) -> Script:
    """A whole script: ``setup`` loads what the host needs (snap-in, shell), ``body`` defines
    ``Invoke-RemediateOperation`` over ``$Parameters``."""
    text = "\n".join(
        (
            MARKER + script_id,
            _parameters_block(dialect, parameters),
            "$ErrorActionPreference = 'Stop'",
            _JSON_PS2 if dialect is Dialect.PS2 else _JSON_PS5,
            _RESULTS,
            setup,
            body.strip("\n"),
            _MAIN,
        )
    )
    return Script(script_id, operation, dialect, parameters, text.replace("\r\n", "\n"))
