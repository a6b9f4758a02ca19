"""What kb842101 must never select, read by the real ldap3 adapter from a real Samba AD DC.

KB842101 sends the administrator to the Users container; there live the DC's own accounts,
created when the domain was provisioned (inside any window around that day): Administrator
(RID 500, isCriticalSystemObject, adminCount=1), Guest (501) and krbtgt (502). The adapter must
read objectSid (binary: shown as S-1-5-21-...), isCriticalSystemObject and adminCount, and a
scope naming an OU that does not exist must be an error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from directory_backends import samba_directory
from kb_support import json_object
from samba_dc import SambaDC

from remediate import Engine, get_playbook
from remediate.adapters.ldap import LdapDirectory
from remediate.adapters.ldap.snapshot import rehearsal_world
from remediate.adapters.world import LiveWorld
from remediate.errors import InputError
from remediate.model import UserQuery, iso
from remediate.playbooks.migration_scope import never_selected
from remediate.sids import sid_text

pytestmark = pytest.mark.samba
BUILT_IN = {"Administrator": 500, "Guest": 501, "krbtgt": 502}


@pytest.fixture
def directory(samba_dc: SambaDC) -> Iterator[LdapDirectory]:
    directory = samba_directory(samba_dc)
    yield directory
    directory.close()


def test_the_adapter_reads_the_sid_criticality_and_admin_count_of_built_in_accounts(
    samba_dc: SambaDC, directory: LdapDirectory
) -> None:
    found = directory.find_users(
        UserQuery(base_dn=f"CN=Users,{samba_dc.base_dn}", sam_account_names=frozenset(BUILT_IN))
    )

    by_name = {entry.sam_account_name: entry for entry in found}
    assert set(by_name) == set(BUILT_IN)
    for name, rid in BUILT_IN.items():
        sid = sid_text((by_name[name].get_binary("objectSid") or (b"",))[0])
        assert sid.startswith("S-1-5-21-") and sid.endswith(f"-{rid}"), sid
        assert never_selected(by_name[name]) is not None
    administrator = by_name["Administrator"]
    assert administrator.get("isCriticalSystemObject") == "TRUE"
    assert administrator.get("adminCount") == "1"


def test_lookup_finds_a_container_and_not_a_mistyped_one(
    samba_dc: SambaDC, directory: LdapDirectory
) -> None:
    users = directory.lookup(f"CN=Users,{samba_dc.base_dn}")
    assert users is not None and users.object_class == "container"
    assert directory.lookup(f"OU=Nowhere-Like-This,{samba_dc.base_dn}") is None


def world_on(directory: LdapDirectory, scope: str) -> LiveWorld:
    stub = rehearsal_world(directory, scope)  # its Exchange has no servers: no mailboxes
    return LiveWorld(directory, stub.exchange, rehearse=lambda: rehearsal_world(directory, scope))


def test_a_plan_on_the_users_container_never_selects_the_dcs_own_accounts(
    samba_dc: SambaDC, directory: LdapDirectory, engine: Engine
) -> None:
    users = f"CN=Users,{samba_dc.base_dn}"
    now = datetime.now(UTC)
    window = {
        "created_after": iso(now - timedelta(days=2)),
        "created_before": iso(now + timedelta(days=1)),
    }

    planned = engine.plan(
        get_playbook("kb842101"), world_on(directory, users), {"ou": users, **window}
    )

    selected = planned.selection_json()
    assert isinstance(selected, dict)
    chosen = {user["sam"] for user in json_object(selected)["users"]}
    assert not chosen & set(BUILT_IN)
    kept = {f.target.split(",")[0] for f in planned.findings if f.kind == "kept-existing-account"}
    assert {f"CN={name}" for name in BUILT_IN} <= kept
    assert [
        c for c in planned.changes if c.step == "delete-ad-user" and c.label.split(",")[0] in kept
    ] == []


def test_a_mistyped_ou_is_an_error_on_samba(
    samba_dc: SambaDC, directory: LdapDirectory, engine: Engine
) -> None:
    typo = f"OU=Migratd,{samba_dc.base_dn}"
    now = datetime.now(UTC)
    window = {"created_after": iso(now - timedelta(days=1)), "created_before": iso(now)}
    with pytest.raises(InputError, match="OU=Migratd"):
        engine.plan(
            get_playbook("kb842101"), world_on(directory, samba_dc.base_dn), {"ou": typo, **window}
        )
