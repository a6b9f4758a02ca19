"""The command line reports what the engine returned: no module of it builds a ChangeRecord
(read from the modules' syntax trees), so it never decides a second time what a run changed."""

from __future__ import annotations

import ast
from pathlib import Path

import remediate.cli
import remediate.engine.savedresult

CLI = Path(remediate.cli.__file__).parent


def record_constructions(path: Path) -> list[str]:
    """Where ``path`` calls ChangeRecord (by any name it is imported as), as 'file:line'."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {"ChangeRecord"} | {
        alias.asname
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name == "ChangeRecord" and alias.asname
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = node.func
        name = (
            called.id
            if isinstance(called, ast.Name)
            else (called.attr if isinstance(called, ast.Attribute) else None)
        )
        if name in names:
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_cli_module_constructs_a_change_record() -> None:
    modules = sorted(CLI.glob("*.py"))
    assert len(modules) > 5
    assert [where for path in modules for where in record_constructions(path)] == []


def test_the_check_finds_a_construction_where_there_is_one() -> None:
    """Not vacuous: the engine's reader of saved plans builds records, and is found."""
    assert record_constructions(Path(remediate.engine.savedresult.__file__))
