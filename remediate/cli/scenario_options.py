"""``remediate scenario``'s options for the worlds a test lab wants beyond the default: the
Exchange servers the users are spread over, and kb278447's evidence cases, each named for what
an operator would find in his organisation."""

from __future__ import annotations

import argparse
import textwrap

from remediate.errors import InputError
from remediate.fakes.scenarios import KB278447_CASES, KB278447_WINDOW

# Operator's name -> (the scenario builder's name, what the world then holds).
EVIDENCE_CASES: dict[str, tuple[str, str]] = {
    "alias-reused": (
        "departed",
        "a leaver's disconnected mailbox shares its alias and legacy DN "
        "with a new hire's: not his, left alone",
    ),
    "two-candidates": (
        "conflict",
        "the legacy DN names one disconnected mailbox, the "
        "objectGUID another: ambiguous, reported for a person to decide",
    ),
    "blank-never-created": (
        "never-created",
        "no logon or mail since the upgrade, so no blank mailbox: reconnected, nothing to export",
    ),
    "stripped-by-hand": (
        "half-done",
        "someone removed his Exchange attributes by hand and stopped: the repair is finished",
    ),
    "repaired-by-hand": (
        "repaired",
        "already on his original, the old blank disconnected: left as it is",
    ),
    "blank-bigger": (
        "big-blank",
        "weeks of mail in the blank, fewer items in the original: "
        "only the upgrade's window tells them apart",
    ),
    "blank-empty": ("empty-blank", "he logged on to the blank, no mail reached it"),
    "freebusy-with-items": (
        "free-busy-items",
        "the Schedule+ Free/Busy mailbox holds items: kept and reported, not purged",
    ),
}
ALL = "all"


def add_scenario_options(scenario: argparse.ArgumentParser) -> None:
    scenario.add_argument(
        "--servers",
        type=int,
        metavar="N",
        help="Exchange servers EXCH01..EXCHnn, the users spread over them "
        "(1 to 99; default 1, 2 from --size 200)",
    )
    scenario.add_argument(
        "--case",
        action="append",
        default=[],
        metavar="CASE",
        choices=[*EVIDENCE_CASES, ALL],
        help="kb278447: add users whose repair depends on the evidence "
        "(repeat the option for several; 'all' for every one, below)",
    )
    window = " -p ".join(f"{key}={value}" for key, value in KB278447_WINDOW.items())
    scenario.epilog = "\n".join(
        [
            "kb278447 evidence cases (--case):",
            *(
                textwrap.fill(
                    text, width=79, initial_indent=f"  {name:<20} ", subsequent_indent=" " * 23
                )
                for name, (_, text) in EVIDENCE_CASES.items()
            ),
            "plan such a world with the upgrade's window:",
            f"  -p {window}",
        ]
    )
    scenario.formatter_class = argparse.RawDescriptionHelpFormatter


def chosen_cases(scenario: str, names: list[str]) -> tuple[str, ...]:
    """The builder's names of the ``--case`` options, in its own order ('all': every one)."""
    if names and scenario != "kb278447":
        raise InputError(
            f"{scenario} has no evidence cases",
            target="--case",
            hint="drop --case, or write a kb278447 world",
        )
    wanted = {EVIDENCE_CASES[name][0] for name in names if name != ALL}
    return KB278447_CASES if ALL in names else tuple(c for c in KB278447_CASES if c in wanted)
