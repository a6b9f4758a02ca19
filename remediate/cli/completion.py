"""Shell completion (argcomplete): commands and options, playbook names (plugins included),
saved plan and world files, run ids. Nothing happens unless the shell asks for completions
(argcomplete's environment variables); enable it with::

    eval "$(register-python-argcomplete remediate)"     # bash, in ~/.bashrc
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import argcomplete
from argcomplete.completers import FilesCompleter

from remediate.engine.journal import RunStore
from remediate.playbooks import PLAYBOOKS


def _playbooks_or_plans(prefix: str, **_: Any) -> Iterable[str]:
    """A playbook's name, or a saved plan's file (``apply PLAN``, ``show PLAN``)."""
    yield from (name for name in PLAYBOOKS if name.startswith(prefix))
    yield from FilesCompleter(allowednames=("json",))(prefix)


def _runs(state_dir: Callable[[], Path]) -> Callable[..., Iterable[str]]:
    def complete(prefix: str, **_: Any) -> Iterable[str]:
        return [run for run in RunStore(state_dir()).run_ids() if run.startswith(prefix)]

    return complete


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps them here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def enable_completion(parser: argparse.ArgumentParser, state_dir: Callable[[], Path]) -> None:
    """Attach the completers, then answer the shell if it is asking (argcomplete exits)."""
    runs = _runs(state_dir)
    for command in _subparsers(parser).values():
        for action in command._actions:
            if action.dest == "playbook":
                action.completer = _playbooks_or_plans  # type: ignore[attr-defined]
            elif action.dest == "run_id":
                action.completer = runs  # type: ignore[attr-defined]
            elif action.dest in ("world", "inventory", "out", "save_world"):
                action.completer = FilesCompleter()  # type: ignore[attr-defined]
    argcomplete.autocomplete(parser)
