#!/usr/bin/env python3
"""Extract facts about Exchange cmdlets from Microsoft's Exchange PowerShell reference.

The reference is the MicrosoftDocs ``office-docs-powershell`` repository, one markdown file per
cmdlet (``exchange/exchange-ps/ExchangePowerShell/<Cmdlet>.md``). From each file this keeps facts
only, never prose: the Exchange versions the cmdlet applies to (front matter ``applicable:``),
its parameter sets (the ``## SYNTAX`` blocks: which parameters each set takes, which are required,
which may be given by position, which take a value) and the versions each parameter applies to
(the ``> Applicable:`` line under ``### -Name``). The result is the data file that
``tests/test_documented_cmdlets.py`` checks every generated script against.

Usage:
    python scripts/extract_cmdlet_facts.py SOURCE [--out FILE] [--revision REV]

SOURCE is a checkout of the repository, or its git directory (then REV, default HEAD, is read).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

DOCS_PATH = "exchange/exchange-ps/ExchangePowerShell"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests" / "facts" / "exchange_cmdlets.json"

# Every cmdlet the scripts use or a fix may use (the test fails on an Exchange cmdlet missing here).
CMDLETS = (
    "Clean-MailboxDatabase",
    "Connect-Mailbox",
    "Disable-Mailbox",
    "Get-ExchangeServer",
    "Get-Mailbox",
    "Get-MailboxDatabase",
    "Get-MailboxExportRequest",
    "Get-MailboxExportRequestStatistics",
    "Get-MailboxImportRequest",
    "Get-MailboxImportRequestStatistics",
    "Get-MailboxStatistics",
    "Get-ManagementRoleAssignment",
    "New-MailboxExportRequest",
    "New-MailboxImportRequest",
    "New-MailboxRestoreRequest",
    "Remove-Mailbox",
    "Remove-MailboxExportRequest",
    "Remove-MailboxImportRequest",
    "Remove-StoreMailbox",
    "Resume-MailboxExportRequest",
    "Resume-MailboxImportRequest",
    "Update-Recipient",
    "Update-StoreMailboxState",
)

# Only the on-premises products: "Exchange Server 2010" -> "2010", "Exchange Server SE" -> "SE".
_VERSION = re.compile(r"^Exchange Server (\d{4}|SE)$")
_FRONT_APPLICABLE = re.compile(r"^applicable:\s*(.+)$", re.MULTILINE)
_SECTION = re.compile(r"^## (.+)$", re.MULTILINE)
_SET_HEADING = re.compile(r"^### (.+)$", re.MULTILINE)
_CODE = re.compile(r"^```[a-z]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_PARAMETER_HEADING = re.compile(r"^### -(\w+)\s*$", re.MULTILINE)
_APPLICABLE_LINE = re.compile(r"^> Applicable:\s*(.+)$", re.MULTILINE)
_YAML_TYPE = re.compile(r"^Type:\s*(\S+)", re.MULTILINE)
_YAML_PIPELINE = re.compile(r"^Accept pipeline input:\s*True", re.MULTILINE)
# One syntax element: "[[-Name] <Type>]", "[-Name] <Type>", "[-Name <Type>]", "-Name <Type>",
# "[-Name]", "-Name" (a "[<CommonParameters>]" matches nothing).
_ELEMENT = re.compile(
    r"\[\[-(?P<opt_pos>\w+)\]\s*<[^>]+>\]"
    r"|\[-(?P<req_pos>\w+)\]\s*<[^>]+>"
    r"|\[-(?P<opt_val>\w+)\s+<[^>]+>\]"
    r"|\[-(?P<opt_switch>\w+)\]"
    r"|-(?P<req_val>\w+)\s+<[^>]+>"
    r"|-(?P<req_switch>\w+)"
)


class DocsError(Exception):
    """A cmdlet's file is missing or not in the shape this extractor reads."""


def versions(text: str) -> list[str]:
    """The on-premises Exchange versions named in an ``applicable`` list."""
    found = []
    for part in text.split(","):
        match = _VERSION.match(part.strip())
        if match:
            found.append(match[1])
    return found


def _sections(markdown: str) -> dict[str, str]:
    heads = list(_SECTION.finditer(markdown))
    return {
        head[1].strip().upper(): markdown[
            head.end() : heads[i + 1].start() if i + 1 < len(heads) else len(markdown)
        ]
        for i, head in enumerate(heads)
    }


def _syntax_sets(syntax: str) -> Iterator[tuple[str, str]]:
    """(set name, syntax text) for each block; a lone block without a heading is "Default"."""
    headings = list(_SET_HEADING.finditer(syntax))
    if not headings:
        for block in _CODE.finditer(syntax):
            yield "Default", block[1]
        return
    for i, heading in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(syntax)
        block = _CODE.search(syntax, heading.end(), end)
        if block is None:
            raise DocsError(f"parameter set {heading[1]!r} has no syntax block")
        yield heading[1].strip(), block[1]


def parameter_set(cmdlet: str, text: str) -> dict[str, dict[str, bool]]:
    """The parameters one syntax block lists: name -> required, positional, takes_value."""
    body = " ".join(text.split())
    if not body.startswith(cmdlet + " ") and body != cmdlet:
        raise DocsError(f"a syntax block of {cmdlet} does not start with its name: {body[:60]!r}")
    parameters: dict[str, dict[str, bool]] = {}
    for match in _ELEMENT.finditer(body[len(cmdlet) :]):
        kind = match.lastgroup
        assert kind is not None
        parameters[match[kind]] = {
            "required": kind.startswith("req"),
            "positional": kind.endswith("_pos"),
            "takes_value": not kind.endswith("_switch"),
        }
    return parameters


def parameter_versions(parameters_section: str) -> dict[str, dict[str, Any]]:
    """Each documented parameter: the versions it applies to, its type, and whether it accepts
    pipeline input (then a piped command may leave it out although its set requires it)."""
    found: dict[str, dict[str, Any]] = {}
    heads = list(_PARAMETER_HEADING.finditer(parameters_section))
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(parameters_section)
        chunk = parameters_section[head.end() : end]
        applicable = _APPLICABLE_LINE.search(chunk)
        kind = _YAML_TYPE.search(chunk)
        found[head[1]] = {
            "applicable": versions(applicable[1]) if applicable else [],
            "type": kind[1] if kind else None,
            "pipeline": _YAML_PIPELINE.search(chunk) is not None,
        }
    return found


def cmdlet_facts(cmdlet: str, markdown: str) -> dict[str, Any]:
    front = _FRONT_APPLICABLE.search(markdown.split("\n---", 1)[0])
    if front is None:
        raise DocsError(f"{cmdlet}: no 'applicable:' line in the front matter")
    sections = _sections(markdown)
    if "SYNTAX" not in sections or "PARAMETERS" not in sections:
        raise DocsError(f"{cmdlet}: no SYNTAX or PARAMETERS section")
    sets = [
        {"name": name, "parameters": parameter_set(cmdlet, text)}
        for name, text in _syntax_sets(sections["SYNTAX"])
    ]
    if not sets:
        raise DocsError(f"{cmdlet}: no syntax block")
    return {
        "applicable": versions(front[1]),
        "parameter_sets": sets,
        "parameters": parameter_versions(sections["PARAMETERS"]),
    }


def _reader(source: Path, revision: str) -> tuple[Callable[[str], str], str]:
    """How to read one cmdlet's file, and the commit (or directory) it comes from."""
    checkout = source / DOCS_PATH
    if checkout.is_dir():

        def read_file(cmdlet: str) -> str:
            path = checkout / f"{cmdlet}.md"
            if not path.is_file():
                raise DocsError(f"{path} does not exist")
            return path.read_text(encoding="utf-8")

        return read_file, _git(source, "rev-parse", "HEAD") or str(source)
    commit = _git(source, "rev-parse", revision)
    if not commit:
        raise DocsError(f"{source} is neither a checkout nor a git directory with {revision}")

    def read_blob(cmdlet: str) -> str:
        text = _git(source, "show", f"{commit}:{DOCS_PATH}/{cmdlet}.md")
        if text is None:
            raise DocsError(f"{DOCS_PATH}/{cmdlet}.md is not in {commit}")
        return text

    return read_blob, commit


def _git(where: Path, *arguments: str) -> str | None:
    done = subprocess.run(
        ["git", "--git-dir" if not (where / ".git").exists() else "-C", str(where), *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def extract(source: Path, revision: str = "HEAD") -> dict[str, Any]:
    read, commit = _reader(source, revision)
    return {
        "format": "remediate.cmdlet-facts/1",
        "source": {
            "repository": "https://github.com/MicrosoftDocs/office-docs-powershell",
            "commit": commit,
            "path": DOCS_PATH + "/<Cmdlet>.md",
        },
        "cmdlets": {cmdlet: cmdlet_facts(cmdlet, read(cmdlet)) for cmdlet in CMDLETS},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--revision", default="HEAD")
    options = parser.parse_args(argv)
    try:
        facts = extract(options.source, options.revision)
    except DocsError as error:
        print(f"extract_cmdlet_facts: {error}", file=sys.stderr)
        return 1
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(facts, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(facts['cmdlets'])} cmdlets from {facts['source']['commit']} -> {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
