"""Exchange 2003's Exchange_Mailbox.Reconnect takes only a sAMAccountName and binds "the first
userid with a matching samaccountname in the forest" (Exchange 2003 SDK): before anyone is
stripped, the name is checked on a global catalog, and a name another user of the forest has
too stops the plan, naming both. On the Samba DC the check goes through its global catalog
port; ``<GUID=...>`` names use the hexadecimal form every DC accepts."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from directory_backends import samba_directory, unique
from kb_support import load, scenario
from samba_dc import SambaDC

from remediate import Engine, get_playbook
from remediate.adapters.ldap import filters
from remediate.adapters.ldap.connection import TlsMode
from remediate.adapters.ldap.directory import GC_PORTS
from remediate.engine.runner import EXIT_PENDING, EXIT_REFUSED
from remediate.model import UserQuery

Doc = dict[str, Any]


def with_namesake(doc: Doc) -> tuple[Doc, Doc, Doc]:
    """A second user, elsewhere in the forest, with an affected user's sAMAccountName."""
    affected = {case["user"] for case in doc["scenario"]["expected"]["affected"]}
    user = next(o for o in doc["directory"]["objects"] if o["guid"] in affected)
    twin = copy.deepcopy(user)
    twin["guid"] = str(uuid.uuid4())
    twin["dn"] = user["dn"].replace("CN=", "CN=Twin of ", 1)
    twin["attributes"] = {
        "sAMAccountName": user["attributes"]["sAMAccountName"],
        "displayName": "Twin",
    }
    doc["directory"]["objects"].append(twin)
    return doc, user, twin


def test_a_name_another_user_of_the_forest_has_stops_the_2003_plan_naming_both(
    engine: Engine,
) -> None:
    doc, user, twin = with_namesake(scenario("kb278447", 3, seed=11, version="2003"))
    world = load(doc)
    plan = engine.plan(get_playbook("kb278447"), world, {})
    assert plan.exit_code == EXIT_REFUSED
    assert plan.error is not None
    assert user["dn"] in plan.error and twin["dn"] in plan.error
    assert "first user with that name in the forest" in plan.error


@pytest.mark.parametrize("version", ["2003", "2016"])
def test_unique_names_plan_as_before(engine: Engine, version: str) -> None:
    plan = engine.plan(
        get_playbook("kb278447"), load(scenario("kb278447", 3, seed=11, version=version)), {}
    )
    assert plan.exit_code == EXIT_PENDING, plan.error


def test_2016_reconnects_by_guid_and_is_not_held_up_by_a_namesake(engine: Engine) -> None:
    doc, _, _ = with_namesake(scenario("kb278447", 3, seed=11, version="2016"))
    plan = engine.plan(get_playbook("kb278447"), load(doc), {})
    assert plan.exit_code == EXIT_PENDING, plan.error


def test_guid_names_use_the_hexadecimal_form_of_the_stored_bytes() -> None:
    guid = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
    assert filters.guid_dn(guid) == "<GUID=67452301ab89efcd0123456789abcdef>"


@pytest.mark.samba
def test_namesakes_are_read_from_the_samba_dcs_global_catalog(samba_dc: SambaDC) -> None:
    directory = samba_directory(samba_dc)
    try:
        name = unique("gc")
        ou = f"OU={unique('gc-')},{samba_dc.base_dn}"
        connection = directory.connection(directory.writable_dc())
        assert connection.add(ou, ["organizationalUnit"])[0]
        dn = f"CN={name},{ou}"
        assert connection.add(dn, ["user"], {"sAMAccountName": name})[0]
        [entry] = directory.find_users(UserQuery(sam_account_names=frozenset({name})))
        found = directory.forest_namesakes([name.upper(), unique("nobody")])
        assert found[name.upper()] == [(entry.guid, entry.dn)]
        assert list(found.values())[1] == []
        gc = f"gc:{directory.writable_dc()}"
        assert directory.connection(gc).server.port == GC_PORTS[TlsMode.LDAPS]
        # delete and modify address the object as <GUID=hex>: the DC takes that form.
        directory.modify(entry.guid, {"displayName": "hex GUID form"})
        seen = directory.read([entry.guid], directory.writable_dc())[entry.guid]
        assert seen.get("displayName") == "hex GUID form"
    finally:
        directory.close()
