"""The inventory: validated as a whole, and `--inventory` reaching the real directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from directory_backends import (
    SAMBA_DC_NAME,
    SambaBackend,
    directory_section,
    samba_directory,
    unique,
    window_around_now,
    window_parameters,
)
from samba_dc import SambaDC

from remediate.adapters.ldap import LdapDirectory
from remediate.cli.main import main
from remediate.errors import InputError
from remediate.inventory import live_world, load_inventory
from remediate.model import UserQuery
from remediate.playbooks import get_playbook

DIRECTORY = """
[directory]
domain = "corp.example"
base_dn = "DC=corp,DC=example"
bind_user = "svc@corp.example"
password_env = "REMEDIATE_TEST_AD_PASSWORD"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.toml"
    path.write_text(text, encoding="utf-8")
    return path


def samba_inventory(tmp_path: Path, samba_dc: SambaDC, extra: str = "") -> Path:
    """An inventory for the session's Samba DC; the password comes from the environment."""
    return write(tmp_path, directory_section(samba_dc, extra=f'dcs = ["{SAMBA_DC_NAME}"]') + extra)


def test_a_minimal_inventory_has_a_directory_no_exchange_and_no_budget(tmp_path: Path) -> None:
    inventory = load_inventory(write(tmp_path, DIRECTORY))
    assert inventory.directory.base_dn == "DC=corp,DC=example"
    assert inventory.exchange == ()
    assert inventory.max_deletions is None


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("[oops]\nx = 1\n", "'oops'"),
        ("[safety]\nmax_deletions = -1\n", "max_deletions"),
        ("[safety]\nbudget = 3\n", "budget"),
        ("[safety]\nparallel = 0\n", "parallel"),
        ("[safety]\nparallel = 100000000000000000000\n", "parallel"),
        ('[safety]\nparallel = "8"\n', "parallel"),
        ('[safety]\nlease_container = "not a dn"\n', "lease_container"),
        ("[safety]\nlease_container = 3\n", "lease_container"),
        (
            '[[exchange]]\nhost = "exch01.corp.example"\nversion = "2016"\npassword = "x"\n',
            "password",
        ),
    ],
)
def test_a_bad_inventory_is_refused_naming_the_file_and_the_key(
    tmp_path: Path, extra: str, named: str
) -> None:
    path = write(tmp_path, DIRECTORY + extra)
    with pytest.raises(InputError) as refused:
        load_inventory(path)
    assert str(path) in str(refused.value)
    assert named in str(refused.value)


def test_an_inventory_without_a_directory_says_what_to_add(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no \[directory\] table"):
        load_inventory(write(tmp_path, "[safety]\nmax_deletions = 3\n"))


def test_the_lease_container_is_cn_program_data_unless_the_inventory_names_one(
    tmp_path: Path,
) -> None:
    assert load_inventory(write(tmp_path, DIRECTORY)).lease_container == (
        "CN=Program Data,DC=corp,DC=example"
    )
    named = "CN=remediate,CN=Program Data,DC=corp,DC=example"
    safety = f"[safety]\nlease_container = '{named}'\n"
    inventory = load_inventory(write(tmp_path, DIRECTORY + safety))
    assert inventory.lease_container == named


def test_the_safety_budget_is_read(tmp_path: Path) -> None:
    inventory = load_inventory(write(tmp_path, DIRECTORY + "[safety]\nmax_deletions = 7\n"))
    assert inventory.max_deletions == 7


def test_servers_at_a_time_are_read_and_absent_by_default(tmp_path: Path) -> None:
    assert load_inventory(write(tmp_path, DIRECTORY)).parallel is None
    inventory = load_inventory(write(tmp_path, DIRECTORY + "[safety]\nparallel = 3\n"))
    assert inventory.parallel == 3


@pytest.mark.samba
def test_plan_and_apply_with_an_inventory_reach_the_samba_dc(
    samba_dc: SambaDC,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory = samba_directory(samba_dc)
    backend = SambaBackend(samba_dc, directory)
    scope = backend.add(samba_dc.base_dn, unique("inv-"), "organizationalUnit").dn
    doomed = backend.add(scope, "Inventory Victim", "user", {"sAMAccountName": unique("iv")})
    kept = backend.add(scope, "Inventory Keeper", "user", {"sAMAccountName": unique("ik")})
    directory.close()
    monkeypatch.setenv("REMEDIATE_TEST_AD_PASSWORD", samba_dc.password)
    path = samba_inventory(tmp_path, samba_dc, "[safety]\nmax_deletions = 5\n")
    state = ["--state-dir", str(tmp_path / "state")]
    users = f"users={doomed.sam_account_name}"
    window = window_around_now()

    assert (
        main(
            [
                *state,
                "-q",
                "plan",
                "kb842101",
                "--inventory",
                str(path),
                "-p",
                users,
                "-p",
                f"ou={scope}",
                *window,
                "--format",
                "json",
            ]
        )
        == 2
    )
    planned = json.loads(capsys.readouterr().out)["changes"]
    assert [c["step"] for c in planned] == ["delete-ad-user"]

    assert (
        main(
            [
                *state,
                "-q",
                "apply",
                "kb842101",
                "--inventory",
                str(path),
                "-p",
                users,
                "-p",
                f"ou={scope}",
                *window,
                "--yes",
                "--format",
                "json",
            ]
        )
        == 0
    )
    applied = json.loads(capsys.readouterr().out)
    assert [(c["step"], c["target"]) for c in applied["changes"]] == [
        (c["step"], c["target"]) for c in planned
    ]
    assert samba_dc.password not in json.dumps(applied)

    check = samba_directory(samba_dc)
    dc = check.writable_dc()
    assert doomed.guid not in check.read([doomed.guid], dc)
    assert kept.guid in check.read([kept.guid], dc)
    check.close()


@pytest.mark.samba
def test_a_plan_through_an_inventory_is_rehearsed_on_what_discovery_read_not_the_domain(
    samba_dc: SambaDC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = samba_directory(samba_dc)
    backend = SambaBackend(samba_dc, directory)
    scope = backend.add(samba_dc.base_dn, unique("scoped-"), "organizationalUnit").dn
    user = backend.add(scope, "Scoped User", "user", {"sAMAccountName": unique("su")})
    devices = backend.add(user.dn, "Devices", "container")
    directory.close()
    monkeypatch.setenv("REMEDIATE_TEST_AD_PASSWORD", samba_dc.password)
    world = live_world(load_inventory(samba_inventory(tmp_path, samba_dc)))
    kb842101 = get_playbook("kb842101")
    kb842101.discover(world, kb842101.parse({"ou": scope, **window_parameters()}))
    live = world.directory
    assert isinstance(live, LdapDirectory)
    before = dict(live.requests_by_operation)

    rehearsal = world.rehearsal().directory

    sent = {
        op: n - before.get(op, 0)
        for op, n in live.requests_by_operation.items()
        if n != before.get(op, 0)
    }
    # The DC's highestCommittedUSN (nothing changed since discovery), then the DCs' sites.
    assert sent == {"directory.changes": 1, "directory.discover": sent["directory.discover"]}
    assert set(rehearsal.read([user.guid, devices.guid], SAMBA_DC_NAME)) == {
        user.guid,
        devices.guid,
    }
    assert (
        rehearsal.find_users(UserQuery(sam_account_names=frozenset({"Administrator"}))) == []
    )  # outside: not read
    live.close()


@pytest.mark.samba
def test_a_snapshot_of_the_samba_dc_plans_like_the_dc_itself(
    samba_dc: SambaDC,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory = samba_directory(samba_dc)
    backend = SambaBackend(samba_dc, directory)
    scope = backend.add(samba_dc.base_dn, unique("snap-"), "organizationalUnit").dn
    parent = backend.add(scope, "Snap Parent", "user", {"sAMAccountName": unique("sp")})
    backend.add(parent.dn, "ExchangeActiveSyncDevices", "container")
    backend.add(scope, "Snap Other", "user", {"sAMAccountName": unique("so")})
    directory.close()
    monkeypatch.setenv("REMEDIATE_TEST_AD_PASSWORD", samba_dc.password)
    path = samba_inventory(tmp_path, samba_dc)
    state = ["--state-dir", str(tmp_path / "state")]
    scope_param = ["-p", f"ou={scope}", *window_around_now()]
    world = tmp_path / "snapshot.json"

    assert (
        main(
            [*state, "snapshot", "--inventory", str(path), "--base-dn", scope, "--out", str(world)]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                *state,
                "-q",
                "plan",
                "kb842101",
                "--inventory",
                str(path),
                *scope_param,
                "--format",
                "json",
            ]
        )
        == 2
    )
    on_dc = json.loads(capsys.readouterr().out)
    assert (
        main(
            [
                *state,
                "-q",
                "plan",
                "kb842101",
                "--world",
                str(world),
                *scope_param,
                "--format",
                "json",
            ]
        )
        == 2
    )
    on_snapshot = json.loads(capsys.readouterr().out)

    assert on_snapshot["changes"] == on_dc["changes"]
    assert on_snapshot["selection"] == on_dc["selection"]
    assert {c["label"] for c in on_dc["changes"]} >= {parent.dn}


def test_an_exchange_2000_server_is_refused_at_plan_with_what_to_do(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REMEDIATE_TEST_AD_PASSWORD", "unused")
    monkeypatch.setenv("EXCH_PW", "unused")
    path = write(
        tmp_path,
        DIRECTORY + '[[exchange]]\nhost = "exch2000.corp.example"\n'
        'version = "2000"\nidentity = "svc@corp.example"\npassword_env = "EXCH_PW"\n',
    )
    state = ["--state-dir", str(tmp_path / "state")]
    assert main([*state, "-q", "plan", "kb278447", "--inventory", str(path)]) == 3
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert "EXCH2000 runs Exchange 2000" in error and "no WinRM" in error
    assert "Follow KB278447 by hand" in error and "upgrade it to Exchange 2003" in error
