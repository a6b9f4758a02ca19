"""Replication on two real DCs: with automatic replication off, kb842101's wait step is seen
polling while the second DC still shows the users; after ``samba-tool drs replicate`` it
completes, and both DCs show the tombstones."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from directory_backends import unique, window_parameters
from kb_support import ldif_backups, run_dir
from samba_pair import BASE_DN, SambaPair, in_namespace

from remediate import Engine, get_playbook
from remediate.adapters.ldap import ConnectionSettings, LdapDirectory
from remediate.adapters.ldap.snapshot import rehearsal_world
from remediate.adapters.world import LiveWorld
from remediate.clock import SystemClock
from remediate.dn import escape_rdn_value
from remediate.engine.runner import EXIT_DONE
from remediate.model import UserQuery
from remediate.testing import apply_confirmed

pytestmark = pytest.mark.samba


class TriggeringClock:
    """Real time plus the waits skipped: a sleep returns at once (the run sees the time as
    passed). At the ``trigger_at``-th sleep it runs ``action`` once (a replication)."""

    def __init__(self, action: object, trigger_at: int) -> None:
        self._real = SystemClock()
        self._skipped = timedelta()
        self._action = action
        self._trigger_at = trigger_at
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._real.now() + self._skipped

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._skipped += timedelta(seconds=seconds)
        if len(self.sleeps) == self._trigger_at and callable(self._action):
            self._action()


@pytest.fixture
def pair_directory(samba_pair: SambaPair) -> Iterator[LdapDirectory]:
    """The adapter on both DCs (discovered), talking from inside the first DC's namespace."""
    names = [name.lower() for name in samba_pair.names]
    settings = ConnectionSettings(
        bind_user=samba_pair.bind_user,
        password=samba_pair.password,
        ca_file=samba_pair.ca_file,
        addresses=dict(zip(names, samba_pair.addresses, strict=True)),
    )
    with in_namespace("sdc1"):
        directory = LdapDirectory(settings, domain="repl.test", base_dn=BASE_DN)
        yield directory
        directory.close()


def test_the_wait_step_polls_until_a_triggered_replication_lands(
    samba_pair: SambaPair, pair_directory: LdapDirectory, engine: Engine
) -> None:
    directory = pair_directory
    first, second = directory.domain_controllers()
    assert directory.writable_dc() == first
    connection = directory.connection(first)
    ou = f"OU={unique('repl-')},{BASE_DN}"
    assert connection.add(ou, ["organizationalUnit"])[0]
    names = [unique("r"), unique("r")]
    for name in names:
        assert connection.add(
            f"CN={escape_rdn_value(name)},{ou}", ["user"], {"sAMAccountName": name}
        )[0]
    holder = f"CN={names[0]},{ou}"
    assert connection.add(f"CN=Devices,{holder}", ["container"])[0]
    samba_pair.replicate(1, 0)  # both DCs hold the users before the run
    users = directory.find_users(UserQuery(base_dn=ou), first)
    guids = [user.guid for user in users]
    children = directory.descendants(guids, first)
    every = guids + [child.guid for found in children.values() for child in found]
    assert len(every) == 3
    assert set(directory.read(every, second)) == set(every)

    seen_on_second_before_replication: list[int] = []

    def replicate() -> None:
        seen_on_second_before_replication.append(len(directory.read(every, second)))
        samba_pair.replicate(1, 0)

    clock = TriggeringClock(replicate, trigger_at=3)
    world = LiveWorld(
        directory,
        rehearsal_world(directory, ou).exchange,
        rehearse=lambda: rehearsal_world(directory, ou),
        clock=clock,
    )
    result = apply_confirmed(
        engine, get_playbook("kb842101"), world, {"ou": ou, **window_parameters()}
    )

    assert result.exit_code == EXIT_DONE, result.error
    # Automatic replication is off: after two polls the second DC still showed all three.
    assert seen_on_second_before_replication == [3]
    assert len(clock.sleeps) >= 3
    for dc in (first, second):
        assert directory.read(every, dc) == {}
        tombstones = directory.read(every, dc, include_deleted=True)
        assert set(tombstones) == set(every)
        assert all(entry.deleted for entry in tombstones.values())
    assert len(ldif_backups(run_dir(result))) == 3


def test_a_global_catalog_shows_a_deletion_once_it_replicated_there(
    samba_pair: SambaPair, pair_directory: LdapDirectory
) -> None:
    """``read_catalog`` searches the second DC's global catalog port (LDAPS: 3269): the user
    deleted on the first stays in its global catalog until replication brings the delete."""
    directory = pair_directory
    first, second = directory.domain_controllers()
    connection = directory.connection(first)
    name = unique("gc")
    dn = f"CN={escape_rdn_value(name)},CN=Users,{BASE_DN}"
    assert connection.add(dn, ["user"], {"sAMAccountName": name})[0]
    samba_pair.replicate(1, 0)
    (user,) = directory.find_users(UserQuery(sam_account_names=frozenset({name})), first)
    assert set(directory.read_catalog([user.guid], second)) == {user.guid}

    directory.delete(user.guid, tree=False)

    assert set(directory.read_catalog([user.guid], second)) == {user.guid}
    assert directory.read_catalog([user.guid], first) == {}
    samba_pair.replicate(1, 0)
    assert directory.read_catalog([user.guid], second) == {}
