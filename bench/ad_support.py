"""What the Samba benchmarks share: users to delete, kb842101 deleting them (timed), and rounds
that alternate the playbook with what it is compared with."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import ldap3
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import samba_dc
from directory_backends import SAMBA_DC_NAME, samba_directory, window_parameters

from remediate.adapters.ldap import LdapDirectory
from remediate.adapters.ldap.snapshot import rehearsal_world
from remediate.adapters.world import LiveWorld
from remediate.engine.runner import Engine, Safety
from remediate.fakes import FakeWorld
from remediate.model import UserQuery
from remediate.playbooks import get_playbook

# The test suite's DC, shared with the benchmarks (tests/ is not a package).
__all__ = [
    "SAMBA_DC_NAME",
    "alternate",
    "live_world",
    "populate",
    "quiet",
    "round_arguments",
    "samba_dc",
    "samba_directory",
    "total",
    "with_playbook",
]

Round = dict[str, str | float]


def round_arguments(description: str, *, rounds: int) -> argparse.Namespace:
    """``--users`` and ``--rounds``, one meaning for every Samba benchmark: each round, each side
    deletes ``--users`` users (the playbook in one apply)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--users", type=int, default=1000, help="users each side deletes in a round (default 1000)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=rounds,
        help=f"rounds, the order of the sides swapped each time (default {rounds})",
    )
    args = parser.parse_args()
    if args.users < 1 or args.rounds < 1:
        parser.error("--users and --rounds must be at least 1")
    return args


def alternate(rounds: int, sides: Mapping[str, Callable[[int], float]]) -> list[Round]:
    """Each round calls every side once with the round's number and keeps the seconds it
    returns; the order is reversed every other round, so a slow spell of the shared machine
    falls on both sides. One dict a round: who went first, then ``<side>_s`` for each side."""
    names = list(sides)
    each: list[Round] = []
    for number in range(rounds):
        order = names if number % 2 == 0 else names[::-1]
        seconds = {name: sides[name](number) for name in order}
        each.append({"first": order[0], **{f"{name}_s": round(seconds[name], 2) for name in names}})
        # As it happens, so a later failure (or a long run stopped) loses no round.
        print(
            f"round {number + 1} of {rounds}: {json.dumps(each[-1])}", file=sys.stderr, flush=True
        )
    return each


def total(each: list[Round], side: str) -> float:
    """The seconds of ``side`` over all rounds."""
    return round(sum(float(one[f"{side}_s"]) for one in each), 2)


def quiet() -> None:
    """Warnings only: the benchmarks time the work, not the console."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def populate(connection: ldap3.Connection, base_dn: str, name: str, count: int) -> str:
    """A new OU ``name`` holding ``count`` users; returns its DN."""
    ou = f"OU={name},{base_dn}"
    connection.add(ou, ["organizationalUnit"])
    for number in range(count):
        connection.add(
            f"CN={name} user {number},{ou}", ["user"], {"sAMAccountName": f"{name}-{number}"}
        )
    return ou


def live_world(directory: LdapDirectory, ou: str) -> LiveWorld:
    """The DC, an Exchange organisation without servers, rehearsals of ``ou``."""
    no_servers = FakeWorld.create(
        domain=directory.domain,
        base_dn=directory.base_dn,
        dcs=[(SAMBA_DC_NAME, 0.0)],
        now=datetime.now(UTC),
    ).exchange
    return LiveWorld(directory, no_servers, rehearse=lambda: rehearsal_world(directory, ou))


def with_playbook(directory: LdapDirectory, engine: Engine, ou: str) -> tuple[float, int]:
    """Seconds for kb842101's apply on ``ou`` (discovery, rehearsal, LDIF backups, deletes,
    replication wait, verify), and the LDAP requests a discovery of ``ou`` takes. As a run
    of the command line would, the apply connects anew (and the time includes the bind)."""
    directory.close()
    before = directory.requests
    directory.find_users(UserQuery(base_dn=ou))
    discovery_requests = directory.requests - before
    directory.close()
    world = live_world(directory, ou)
    start = time.perf_counter()
    result = engine.apply(
        get_playbook("kb842101"),
        world,
        {"ou": ou, **window_parameters()},
        safety=Safety(confirm=lambda _: True),
    )
    seconds = time.perf_counter() - start
    assert result.exit_code == 0, result.error
    return seconds, discovery_requests
