"""The layers of docs/ARCHITECTURE.md, drawn from the code's imports: no module imports a layer
above its own, nor a layer beside it that it must not know (the fakes and the real adapters
never import steps or playbooks)."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from graphlib import TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# docs/ARCHITECTURE.md, "Layers": every layer and the layers it may import (its own always).
MAY_IMPORT: dict[str, set[str]] = {
    "foundation": set(),
    "ports": {"foundation"},
    "engine": {"ports", "foundation"},
    "steps": {"engine", "ports", "foundation"},
    "playbooks": {"steps", "engine", "ports", "foundation"},
    "fakes": {"engine", "ports", "foundation"},
    "adapters": {"fakes", "ports", "foundation"},
    "library": {"adapters", "fakes", "playbooks", "steps", "engine", "ports", "foundation"},
    "cli": {"library", "adapters", "fakes", "playbooks", "steps", "engine", "ports", "foundation"},
}

# A module belongs to the layer of the longest name here that is it or a package holding it.
# Top-level modules are named one by one: a new one must be placed on the page and here.
LAYER_OF: dict[str, str] = {
    **dict.fromkeys(
        (
            "errors",
            "model",
            "dn",
            "sids",
            "strictjson",
            "clock",
            "turns",
            "recipient",
            "ldif",
            "inventoryfile",
            "markdown",
            "hosts",
            "gcpolicy",
        ),
        "foundation",
    ),
    "ports": "ports",
    "engine": "engine",
    "steps": "steps",
    "playbooks": "playbooks",
    "fakes": "fakes",
    "adapters": "adapters",
    **dict.fromkeys(("", "inventory", "snapshot", "testing"), "library"),
    "cli": "cli",
    "__main__": "cli",
}


def installed_sources() -> dict[str, Path]:
    """Each installed package and the folder it is built from (pyproject's package-dir)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    mapping: dict[str, str] = pyproject["tool"]["setuptools"]["package-dir"]
    return {package: ROOT / folder for package, folder in mapping.items()}


def modules() -> dict[str, Path]:
    """Every module of the installed package, by the name it is imported as."""
    found: dict[str, Path] = {}
    for package, folder in installed_sources().items():
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.setdefault(name, path)  # remediate/ does not hold fakes/ or playbooks/
    return found


def layer(module: str) -> str:
    parts = module.split(".")[1:]  # "" for the package itself, never a fallback for the rest
    for key in [".".join(parts[:length]) for length in range(len(parts), 0, -1)] or [""]:
        if key in LAYER_OF:
            return LAYER_OF[key]
    raise AssertionError(f"{module} is in no layer: place it in docs/ARCHITECTURE.md and here")


def imported(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """The package's modules that ``module`` imports, anywhere in it (type-only imports too: a
    dependency all the same). ``from package import name`` names a module where there is one."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base not in known:
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in known else base


def upward_imports() -> list[str]:
    everything = modules()
    known = set(everything)
    found = []
    for module, path in sorted(everything.items()):
        own = layer(module)
        for target in sorted(set(imported(module, path, known))):
            other = layer(target)
            if other != own and other not in MAY_IMPORT[own]:
                found.append(f"{module} ({own}) imports {target} ({other})")
    return found


def test_the_layers_are_an_order() -> None:
    """Nothing may import what imports it, through any chain of layers."""
    order = list(TopologicalSorter(MAY_IMPORT).static_order())
    assert order[0] == "foundation" and order[-1] == "cli"


def test_every_module_is_in_a_layer() -> None:
    assert {layer(module) for module in modules()} == set(MAY_IMPORT)


def test_no_module_imports_upward() -> None:
    assert upward_imports() == []


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("remediate.steps.ad", "remediate.engine.step", True),
        ("remediate.engine.runner", "remediate.steps.ad", False),
        ("remediate.fakes.world", "remediate.playbooks", False),
        ("remediate.adapters.world", "remediate.fakes", True),
        ("remediate.ports", "remediate.model", True),
        ("remediate.model", "remediate.ports", False),
    ],
)
def test_the_table_reads_as_the_page_says(source: str, target: str, allowed: bool) -> None:
    assert (layer(target) in MAY_IMPORT[layer(source)]) is allowed
