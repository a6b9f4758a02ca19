"""The extractor reads a cmdlet's reference page into facts: versions, parameter sets (required,
positional, switch or value), each parameter's versions and pipeline input. The page below is
written for this test in the reference's shape, not taken from it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "extract_cmdlet_facts.py"

PAGE = """---
applicable: Exchange Server 2013, Exchange Server 2016, Exchange Online
title: Set-Example
---

# Set-Example

## SYNOPSIS
Made up for a test.

## SYNTAX

### First
```
Set-Example [-Identity] <ExampleIdParameter> -Mode <String> [-Force]
 [[-Note] <String>]
 [<CommonParameters>]
```

### Second
```
Set-Example -Database <DatabaseIdParameter> [-Quick]
 [<CommonParameters>]
```

## DESCRIPTION
Nothing.

## PARAMETERS

### -Identity

> Applicable: Exchange Server 2013, Exchange Server 2016

```yaml
Type: ExampleIdParameter
Accept pipeline input: True
```

### -Quick

> Applicable: Exchange Server 2016, Exchange Online

```yaml
Type: SwitchParameter
Accept pipeline input: False
```
"""


def extractor() -> ModuleType:
    spec = importlib.util.spec_from_file_location("extract_cmdlet_facts", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_page_becomes_facts() -> None:
    facts = extractor().cmdlet_facts("Set-Example", PAGE)
    assert facts["applicable"] == ["2013", "2016"]  # Exchange Online is not a server version
    first, second = facts["parameter_sets"]
    assert first["name"] == "First" and second["name"] == "Second"
    assert first["parameters"] == {
        "Identity": {"required": True, "positional": True, "takes_value": True},
        "Mode": {"required": True, "positional": False, "takes_value": True},
        "Force": {"required": False, "positional": False, "takes_value": False},
        "Note": {"required": False, "positional": True, "takes_value": True},
    }
    assert second["parameters"]["Quick"] == {
        "required": False,
        "positional": False,
        "takes_value": False,
    }
    assert facts["parameters"]["Identity"] == {
        "applicable": ["2013", "2016"],
        "type": "ExampleIdParameter",
        "pipeline": True,
    }
    assert facts["parameters"]["Quick"]["applicable"] == ["2016"]


def test_a_page_not_in_that_shape_is_an_error_not_a_guess() -> None:
    module = extractor()
    with pytest.raises(module.DocsError, match="does not start with its name"):
        module.cmdlet_facts("Get-Other", PAGE)


def test_the_script_reads_a_checkout_and_writes_the_data_file(tmp_path: Path) -> None:
    module = extractor()
    docs = tmp_path / "docs" / module.DOCS_PATH
    docs.mkdir(parents=True)
    for cmdlet in module.CMDLETS:
        (docs / f"{cmdlet}.md").write_text(PAGE.replace("Set-Example", cmdlet))
    out = tmp_path / "facts.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "docs"), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    facts = json.loads(out.read_text())
    assert facts["format"] == "remediate.cmdlet-facts/1"
    assert set(facts["cmdlets"]) == set(module.CMDLETS)
    missing = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
