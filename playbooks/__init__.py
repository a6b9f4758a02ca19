"""The playbooks, by name: the built-in ones and every plugin's. Installed as
``remediate.playbooks``.

A plugin is any installed distribution with an entry point in the group
``remediate.playbooks`` naming a :class:`~remediate.engine.playbook.Playbook` subclass (or an
instance of one)::

    [project.entry-points."remediate.playbooks"]
    kb123456 = "acme_playbooks.kb123456:Kb123456"

``list``, ``show``, ``plan``, ``apply``, ``resume`` and saved plans all find it here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from remediate.engine.playbook import Playbook
from remediate.errors import InputError

from .kb278447 import Kb278447
from .kb842101 import Kb842101

ENTRY_POINT_GROUP = "remediate.playbooks"
# A name goes into run ids and file names: lower case, digits, '-', '_' and '.'.
VALID_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

AnyPlaybook = Playbook[Any, Any]


def _plugin(entry: EntryPoint) -> AnyPlaybook:
    where = f"entry point {entry.name} = {entry.value} (group {ENTRY_POINT_GROUP})"
    try:
        loaded = entry.load()
        playbook = loaded() if isinstance(loaded, type) else loaded
    except Exception as error:  # a broken plugin must not look like a crash of ours
        raise InputError(
            f"the playbook plugin cannot be loaded: {error}",
            target=where,
            hint="fix or uninstall the package that declares it",
        ) from None
    if not isinstance(playbook, Playbook):
        raise InputError(
            "is not a remediate Playbook (or a subclass of it)",
            target=where,
            hint="point the entry point at a Playbook subclass",
        )
    return playbook


class Registry(Mapping[str, AnyPlaybook]):
    """The built-in playbooks and, found on first use, the plugins' (``reload`` looks again)."""

    def __init__(self, built_in: tuple[AnyPlaybook, ...]) -> None:
        self._built_in = built_in
        self._found: dict[str, AnyPlaybook] | None = None

    def _playbooks(self) -> dict[str, AnyPlaybook]:
        if self._found is None:
            found: dict[str, AnyPlaybook] = {}
            plugins = [_plugin(entry) for entry in entry_points(group=ENTRY_POINT_GROUP)]
            for playbook in (*self._built_in, *plugins):
                self._add(found, playbook)
            self._found = found
        return self._found

    @staticmethod
    def _add(found: dict[str, AnyPlaybook], playbook: AnyPlaybook) -> None:
        name = getattr(playbook, "name", None)
        where = f"playbook class {type(playbook).__module__}.{type(playbook).__qualname__}"
        if not isinstance(name, str) or not VALID_NAME.match(name):
            raise InputError(
                f"has the name {name!r}",
                target=where,
                hint="name it in lower case: letters, digits, '-', '_', '.'",
            )
        if name in found and type(found[name]) is not type(playbook):
            raise InputError(
                f"two playbooks are named {name!r}",
                target=where,
                hint=f"uninstall one, or rename it (the other is {type(found[name]).__module__})",
            )
        found[name] = playbook

    def reload(self) -> None:
        self._found = None

    def __getitem__(self, name: str) -> AnyPlaybook:
        return self._playbooks()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._playbooks())

    def __len__(self) -> int:
        return len(self._playbooks())


PLAYBOOKS = Registry((Kb842101(), Kb278447()))


def find_playbook(name: str) -> AnyPlaybook | None:
    return PLAYBOOKS.get(name.lower())


def get_playbook(name: str) -> AnyPlaybook:
    playbook = find_playbook(name)
    if playbook is None:
        raise InputError(
            "no such playbook",
            target=name,
            hint=f"known playbooks: {', '.join(PLAYBOOKS)} (`remediate list`); a plugin's "
            f"package declares an entry point in the group {ENTRY_POINT_GROUP}",
        )
    return playbook


__all__ = [
    "ENTRY_POINT_GROUP",
    "PLAYBOOKS",
    "Kb278447",
    "Kb842101",
    "Registry",
    "find_playbook",
    "get_playbook",
]
