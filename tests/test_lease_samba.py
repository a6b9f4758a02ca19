"""The organisation's lease on a real DC (the session's Samba AD DC): the ldap3 adapter's add,
compare-and-swap and removal, and two `python -m remediate apply --inventory` processes with
separate state directories (two operators): the second is refused naming the first."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pexpect
import pytest
from directory_backends import (
    SAMBA_DC_NAME,
    SambaBackend,
    directory_section,
    samba_directory,
    unique,
)
from samba_dc import SambaDC
from terminal_support import TIMEOUT, spawn_cli

from remediate.adapters.ldap import LdapDirectory
from remediate.clock import SystemClock
from remediate.engine.lease import LeaseRecord, OrganisationLease, lease_dn
from remediate.engine.retry import RetryPolicy
from remediate.errors import LockHeld
from remediate.model import iso

pytestmark = pytest.mark.samba
PASSWORD_ENV = "REMEDIATE_TEST_AD_PASSWORD"


@pytest.fixture
def directory(samba_dc: SambaDC) -> Iterator[LdapDirectory]:
    directory = samba_directory(samba_dc)
    yield directory
    directory.close()


def new_container(samba_dc: SambaDC, directory: LdapDirectory) -> str:
    """A container of its own for each test (tests share the DC), with a name to escape."""
    return (
        SambaBackend(samba_dc, directory)
        .add(samba_dc.base_dn, unique("lease, ops+"), "container")
        .dn
    )


def test_the_adapter_adds_a_lease_once_and_swaps_and_removes_only_its_record_on_a_real_dc(
    samba_dc: SambaDC, directory: LdapDirectory
) -> None:
    dn = lease_dn(new_container(samba_dc, directory))
    other = samba_directory(samba_dc)  # a second connection: another operator's run

    assert directory.lease(dn) is None
    assert directory.add_lease(dn, "first")
    assert not other.add_lease(dn, "second")  # entryAlreadyExists (68)
    assert other.lease(dn) == "first"
    assert not other.swap_lease(dn, "stale", "second")  # noSuchAttribute: not swapped
    assert directory.lease(dn) == "first"
    assert directory.swap_lease(dn, "first", "renewed")
    assert not other.remove_lease(dn, "first")
    assert directory.remove_lease(dn, "renewed")
    assert other.lease(dn) is None
    assert not other.swap_lease(dn, "renewed", "x")  # gone: noSuchObject, not an error
    other.close()


def test_a_second_lease_on_a_real_dc_is_refused_naming_the_holder_until_released(
    samba_dc: SambaDC, directory: LdapDirectory
) -> None:
    container = new_container(samba_dc, directory)
    other = samba_directory(samba_dc)

    def lease(on: LdapDirectory, run_id: str) -> OrganisationLease:
        return OrganisationLease(
            on,
            container,
            organisation="samdom.test",
            run_id=run_id,
            clock=SystemClock(),
            retry=RetryPolicy(attempts=1),
        )

    first = lease(directory, "20261207T120000Z-kb842101-aaaaaa")
    first.acquire()
    with pytest.raises(LockHeld) as refused:
        lease(other, "20261207T120001Z-kb842101-bbbbbb").acquire()
    assert f"run 20261207T120000Z-kb842101-aaaaaa, pid {os.getpid()} on " in str(refused.value)
    record = LeaseRecord.from_text(other.lease(lease_dn(container)))
    assert record is not None and record.host == socket.gethostname()

    first.release(keep=False)
    assert other.lease(lease_dn(container)) is None
    second = lease(other, "20261207T120001Z-kb842101-bbbbbb")
    second.acquire()
    second.release(keep=False)
    other.close()


def test_a_second_apply_from_another_state_directory_is_refused_naming_the_holder(
    samba_dc: SambaDC, directory: LdapDirectory, tmp_path: Path
) -> None:
    """Two operators: two processes, two state directories, one organisation. The first holds
    the lease while it waits at its confirmation prompt; the second is refused (exit 3) naming
    it; once the first has finished, the lease is gone and the second runs."""
    backend = SambaBackend(samba_dc, directory)
    container = new_container(samba_dc, directory)
    scope = backend.add(samba_dc.base_dn, unique("lease-"), "organizationalUnit").dn
    victim = backend.add(scope, "Lease Victim", "user", {"sAMAccountName": unique("lv")})
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        directory_section(samba_dc, password_env=PASSWORD_ENV, extra=f'dcs = ["{SAMBA_DC_NAME}"]')
        + f"[safety]\nlease_container = '{container}'\n",
        encoding="utf-8",
    )
    env = {**os.environ, PASSWORD_ENV: samba_dc.password}
    created = victim.when_created
    apply = [
        "apply",
        "kb842101",
        "--inventory",
        str(inventory),
        "-p",
        f"ou={scope}",
        "-p",
        f"users={victim.sam_account_name}",
        "-p",
        f"created_after={iso(created - timedelta(minutes=1))}",
        "-p",
        f"created_before={iso(created + timedelta(minutes=1))}",
    ]

    first = spawn_cli(
        env, tmp_path, "-q", "--state-dir", tmp_path / "ann", *apply, dimensions=(40, 160)
    )
    try:
        first.expect_exact("Type 'yes' to continue: ")
        (run_dir,) = (tmp_path / "ann" / "runs").iterdir()

        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "remediate",
                "-q",
                "--state-dir",
                str(tmp_path / "bob"),
                *apply,
                "--yes",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

        assert second.returncode == 3, second.stderr
        refusal = " ".join(second.stderr.split())  # as one line, whatever the wrapping
        assert f"another run holds the lease (run {run_dir.name}, pid {first.pid} on " in refusal, (
            refusal
        )
        assert f"@{socket.gethostname()}" in refusal and "wait for it to finish" in refusal
        assert not (tmp_path / "bob" / "runs").exists() or not any(
            (tmp_path / "bob" / "runs").iterdir()
        )
        held = LeaseRecord.from_text(directory.lease(lease_dn(container)))
        assert held is not None and (held.run_id, held.pid) == (run_dir.name, first.pid)

        first.sendline("yes")
        first.expect(pexpect.EOF)
    finally:
        first.close(force=True)
    assert first.exitstatus == 0, first.before
    assert directory.lease(lease_dn(container)) is None  # released at the end

    # The lease is free again: the second run gets past it, to discovery, which says the user
    # it names is gone (kb842101 makes a users= name that matches nothing an error, exit 1).
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "remediate",
            "-q",
            "--state-dir",
            str(tmp_path / "bob"),
            *apply,
            "--yes",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert again.returncode == 1, again.stderr
    assert "names no user" in again.stderr and "holds the lease" not in again.stderr
    assert directory.lease(lease_dn(container)) is None
