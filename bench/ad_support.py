"""What the Samba benchmarks share: users to delete, and kb842101 deleting them (timed)."""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import ldap3
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import samba_dc
from directory_backends import SAMBA_DC_NAME, samba_directory

from remediate.adapters.ldap import LdapDirectory
from remediate.adapters.ldap.snapshot import rehearsal_world
from remediate.adapters.world import LiveWorld
from remediate.engine.runner import Engine, Safety
from remediate.fakes import FakeWorld
from remediate.model import UserQuery
from remediate.playbooks import get_playbook

# The test suite's DC, shared with the benchmarks (tests/ is not a package).
__all__ = ["SAMBA_DC_NAME", "live_world", "populate", "quiet", "samba_dc", "samba_directory",
           "with_playbook"]


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
        domain=directory.domain, base_dn=directory.base_dn, dcs=[(SAMBA_DC_NAME, 0.0)],
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
        get_playbook("kb842101"), world, {"ou": ou}, safety=Safety(confirm=lambda _: True)
    )
    seconds = time.perf_counter() - start
    assert result.exit_code == 0, result.error
    return seconds, discovery_requests
