"""The command line reads its options once, into one frozen object: every option of every
command has a field there (an option added without one fails here), and commands cannot change
it."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from remediate.cli.main import build_parser
from remediate.cli.options import CommandOptions

NOT_OPTIONS = {"help", "func", "version"}  # argparse's own, and the command's function


def option_names(parser: argparse.ArgumentParser) -> set[str]:
    names = {action.dest for action in parser._actions}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                names |= option_names(command)
    return names - NOT_OPTIONS - {argparse.SUPPRESS}


def test_every_option_of_every_command_has_a_field() -> None:
    fields = {field.name for field in dataclasses.fields(CommandOptions)}
    names = option_names(build_parser())
    assert {"param", "max_deletions", "durable_world", "run_id"} <= names
    assert names - fields == set()


def test_options_are_read_once_typed_and_frozen() -> None:
    args = build_parser().parse_args(
        ["apply", "kb842101", "-p", "users=a", "-p", "ou=b", "--yes", "--parallel", "2"]
    )
    options = CommandOptions.from_args(args)
    assert options.param == ("users=a", "ou=b") and options.yes and options.parallel == 2
    assert options.save_world is None and options.run_id == ""  # not given: the default
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.yes = False  # type: ignore[misc]
