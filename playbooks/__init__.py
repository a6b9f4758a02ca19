"""The playbooks, by name. Installed as ``remediate.playbooks``."""

from __future__ import annotations

from typing import Any

from remediate.engine.playbook import Playbook
from remediate.errors import InputError

from .kb278447 import Kb278447
from .kb842101 import Kb842101

PLAYBOOKS: dict[str, Playbook[Any, Any]] = {
    playbook.name: playbook for playbook in (Kb842101(), Kb278447())
}


def get_playbook(name: str) -> Playbook[Any, Any]:
    playbook = PLAYBOOKS.get(name.lower())
    if playbook is None:
        raise InputError(
            "no such playbook", target=name, hint=f"known playbooks: {', '.join(PLAYBOOKS)}"
        )
    return playbook


__all__ = ["PLAYBOOKS", "Kb278447", "Kb842101", "get_playbook"]
