"""How a script and its data reach PowerShell without touching the cmd.exe 8191-character limit
and without the data ever becoming script text.

The command line is a short constant bootstrap (``-EncodedCommand``, about 1,300 characters). It
reads stdin: the first line is the script (base64 UTF-8), each further line one argument (base64,
prefixed with ``=`` so an empty one survives). It runs the script as a script block with those
arguments. Base64 holds no quote, ``$``, backtick, ``;`` or newline, so no value can escape.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence

from .scripts import Dialect, Script

# PowerShell 1.0 (an Exchange 2007 host without WMF 2.0) has no $PSVersionTable and cannot run
# the scripts (try/catch came with 2.0): the bootstrap, written in what 1.0 parses, refuses
# before reading anything. No -ExecutionPolicy: powershell.exe 1.0 has no such switch, and an
# execution policy governs script files, not an encoded command or a script block.
PS1_REFUSAL = (
    '{"message":"Windows PowerShell 1.0 here: install WMF 2.0 (PowerShell 2.0, KB968930), '
    'then plan again","target":""}'
)
BOOTSTRAP = (
    r"""$ErrorActionPreference = 'Stop'
if ($null -eq $PSVersionTable) {
    [Console]::Out.WriteLine('REMEDIATE-REFUSED """
    + PS1_REFUSAL
    + r"""')
    exit 3
}
$lines = [Console]::In.ReadToEnd().Split([char]10)
$bytes = [System.Convert]::FromBase64String($lines[0].Trim().Substring(1))
$code = [System.Text.Encoding]::UTF8.GetString($bytes)
$arguments = @()
foreach ($line in ($lines | Select-Object -Skip 1)) {
    $line = $line.Trim()
    if ($line.StartsWith('=')) {
        $arguments += $line.Substring(1)
    }
}
$block = [System.Management.Automation.ScriptBlock]::Create($code)
& $block @arguments
exit $LASTEXITCODE
"""
)
PROGRAM = "powershell.exe"
ARGUMENTS = (
    "-NoProfile",
    "-NonInteractive",
    "-EncodedCommand",
    base64.b64encode(BOOTSTRAP.encode("utf-16-le")).decode("ascii"),
)

Value = str | Sequence[str]
LIST_ITEM = "~"  # not a base64 character


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def arguments(script: Script, values: Mapping[str, Value]) -> list[str]:
    """The script's arguments: one base64 JSON document (PowerShell 3+), or one base64 string per
    parameter, a list being its items' base64, each after a ``~`` (so that an empty item
    survives), joined by commas (PowerShell 2.0)."""
    missing = [p.name for p in script.parameters if p.name not in values]
    extra = sorted(set(values) - {p.name for p in script.parameters})
    if script.dialect is Dialect.PS5:
        extra = []
    if missing or extra:
        raise ValueError(f"{script.id}: missing {missing}, unexpected {extra}")
    if script.dialect is Dialect.PS5:
        plain = {
            name: value if isinstance(value, str) else list(value) for name, value in values.items()
        }
        return [_b64(json.dumps(plain))]
    encoded = []
    for parameter in script.parameters:
        value = values[parameter.name]
        if parameter.is_list:
            if isinstance(value, str):
                raise ValueError(f"{script.id}: {parameter.name} must be a list")
            encoded.append(",".join(LIST_ITEM + _b64(item) for item in value))
        else:
            if not isinstance(value, str):
                raise ValueError(f"{script.id}: {parameter.name} must be a string")
            encoded.append(_b64(value))
    return encoded


def stdin(script: Script, values: Mapping[str, Value]) -> bytes:
    lines = ["=" + _b64(script.text), *("=" + argument for argument in arguments(script, values))]
    return ("\n".join(lines) + "\n").encode("ascii")
