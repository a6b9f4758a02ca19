"""What the command line was given, typed and read once: the one object the commands take."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from remediate.engine.listener import RunListener
from remediate.errors import InputError


@dataclass(frozen=True, slots=True)
class CommandOptions:
    """Every option of every command, named as argparse names it (its ``dest``), with the
    value it has when the command does not take it.

    Adding an option is one line here, beside its ``add_argument`` in ``main.build_parser``:
    a field named as the option's dest, typed, with its default (``leave_out_dc:
    tuple[str, ...] = ()`` for ``--leave-out-dc NAME`` with ``action="append"``).
    :meth:`from_args` fills each field from the parsed arguments by that name; lists become
    tuples, so the object stays immutable. Commands read it and never change it: a command
    that needs another value (a saved plan naming its world) makes a copy with
    ``dataclasses.replace``."""

    command: str = ""
    # global options
    state_dir: str | None = None
    verbose: int = 0
    quiet: int = 0
    log_format: str | None = None
    # what to work on
    playbook: str = ""
    param: tuple[str, ...] = ()
    world: str | None = None
    inventory: str | None = None
    run_id: str = ""
    # how
    format: str = "text"
    allow_protected: bool = False
    replication_timeout: float | None = None
    leave_out_dc: tuple[str, ...] = ()
    retry_deadline: float | None = None
    parallel: int | None = None
    out: str | None = None
    skip_drifted: bool = False
    max_plan_age: float = 24 * 3600.0
    yes: bool = False
    break_lease: bool = False
    max_deletions: int | None = None
    save_world: str | None = None
    durable_world: bool = False
    all: bool = False  # show-run --all
    base_dn: str | None = None  # snapshot
    name: str = ""  # scenario
    size: int = 20
    seed: int = 1
    version: str | None = None
    servers: int | None = None  # scenario
    case: tuple[str, ...] = ()  # scenario --case
    # set by main, not by an option: the console's listeners (step lines, progress bars)
    listeners: tuple[RunListener, ...] = ()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CommandOptions:
        given = vars(args)
        values: dict[str, Any] = {
            field.name: _frozen(given[field.name]) for field in fields(cls) if field.name in given
        }
        return cls(**values)

    def state_path(self) -> Path:
        """--state-dir, else $REMEDIATE_STATE_DIR, else ./.remediate."""
        return Path(self.state_dir or os.environ.get("REMEDIATE_STATE_DIR") or ".remediate")

    def required_out(self) -> Path:
        """--out of a command whose parser requires it (scenario, snapshot)."""
        if not self.out:
            raise InputError("--out is required", target="command line", hint="--out FILE")
        return Path(self.out)

    @property
    def quietened(self) -> bool:
        """-q said more often than -v: warnings and errors only."""
        return self.quiet > self.verbose


def _frozen(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value
