"""The fake Exchange organisation: ownership through the server's DC, the cleanup agent,
purge, disable, reconnect, services and delivery, exports and imports, rehearsals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from fakes_support import STORE_DN, add_user, new_world

from remediate.errors import PermanentError
from remediate.fakes import FakeWorld
from remediate.model import (
    EXCHANGE_ATTRIBUTES,
    ExchangeVersion,
    MailboxInfo,
    MailItem,
    ServiceState,
)
from remediate.ports import Directory, Exchange, ManualActionRequired, World

E2013 = ExchangeVersion.E2013


def test_the_fake_world_satisfies_the_ports() -> None:
    world: World = new_world()  # mypy --strict checks the fakes against the protocols here
    directory: Directory = world.directory
    exchange: Exchange = world.exchange
    assert directory.writable_dc() == "DC1" and [s.name for s in exchange.servers()] == ["EXCH01"]
    assert world.rehearsal().organisation == world.organisation == "corp.example"


def mailbox_state(world: FakeWorld, guid: UUID) -> MailboxInfo:
    return world.exchange.mailboxes("EXCH01", [guid])[0]


def test_a_mailbox_belongs_to_the_user_naming_it_as_the_servers_dc_sees_it() -> None:
    world = new_world(version=E2013)
    user = add_user(world, "Ann Lee")
    orphan = add_user(world, "Orphan")
    world.directory.write("DC2", orphan.guid, {"msExchMailboxGuid": None}, operation="test")
    assert user.mailbox and orphan.mailbox
    assert mailbox_state(world, user.mailbox).owner == user.guid
    assert mailbox_state(world, orphan.mailbox).owner is None
    world.directory.delete(user.guid, tree=False)  # on DC1; EXCH01 reads DC2, 900 s behind
    assert mailbox_state(world, user.mailbox).owner == user.guid
    world.advance(900)
    assert mailbox_state(world, user.mailbox).owner is None


def test_the_cleanup_agent_disconnects_only_what_its_dc_already_sees() -> None:
    world = new_world(version=E2013)
    user = add_user(world, "Ann Lee")
    assert user.mailbox
    world.directory.delete(user.guid, tree=False)
    world.exchange.run_cleanup_agent("EXCH01", [STORE_DN])
    assert not mailbox_state(world, user.mailbox).disconnected
    world.advance(900)
    world.exchange.run_cleanup_agent("EXCH01", [STORE_DN.upper()])
    assert mailbox_state(world, user.mailbox).disconnected_at == world.clock.now()


def test_the_cleanup_agent_clears_the_mark_when_a_user_points_at_the_mailbox_again() -> None:
    world = new_world(version=E2013)
    user = add_user(world, "Ann Lee")
    assert user.mailbox
    world.directory.write("DC2", user.guid, {"msExchMailboxGuid": None}, operation="test")
    world.exchange.run_cleanup_agent("EXCH01", [STORE_DN])
    assert mailbox_state(world, user.mailbox).disconnected
    world.directory.write(
        "DC2", user.guid, {"msExchMailboxGuid": str(user.mailbox)}, operation="test"
    )
    world.exchange.run_cleanup_agent("EXCH01", [STORE_DN])
    assert not mailbox_state(world, user.mailbox).disconnected


def test_exchange_2003_cleanup_agent_is_a_manual_step_with_esm_instructions() -> None:
    world = new_world(dcs=[("DC1", 0), ("DC2", 0)], version=ExchangeVersion.E2003)
    second = "CN=Second,CN=First Storage Group,CN=InformationStore,CN=EXCH01,DC=corp,DC=example"
    world.exchange.add_store("EXCH01", "Second Store", "Second Storage Group", second)
    user = add_user(world, "Ann Lee")
    assert user.mailbox
    world.directory.delete(user.guid, tree=False)
    with pytest.raises(ManualActionRequired) as manual:
        world.exchange.run_cleanup_agent("EXCH01", [STORE_DN, second])
    prefix = "On EXCH01 open Exchange System Manager > Administrative Groups > "
    assert manual.value.instructions.splitlines() == [
        prefix + "First Administrative Group > Servers > EXCH01 > First Storage Group > "
        "Mailbox Store (EXCH01) > right-click Mailboxes > Run Cleanup Agent",
        prefix + "First Administrative Group > Servers > EXCH01 > Second Storage Group > "
        "Second Store > right-click Mailboxes > Run Cleanup Agent",
    ]
    assert not mailbox_state(world, user.mailbox).disconnected
    assert manual.value.rehearse is not None  # what the operator's action does, for a plan
    manual.value.rehearse()
    assert mailbox_state(world, user.mailbox).disconnected


def test_exchange_2003_runs_the_cleanup_agent_by_itself_every_24_hours() -> None:
    world = new_world(dcs=[("DC1", 0), ("DC2", 0)], version=ExchangeVersion.E2003)
    user = add_user(world, "Ann Lee")
    assert user.mailbox
    world.directory.delete(user.guid, tree=False)  # at 12:00
    world.advance(11 * 3600 + 3599)
    assert not mailbox_state(world, user.mailbox).disconnected
    world.advance(1)
    midnight = datetime(2026, 11, 2, tzinfo=UTC)
    assert mailbox_state(world, user.mailbox).disconnected_at == midnight


def test_a_scheduled_pass_sees_only_what_its_dc_had_received_at_that_moment() -> None:
    world = new_world(version=ExchangeVersion.E2003)  # EXCH01 reads DC2, 900 s behind
    user = add_user(world, "Ann Lee")
    assert user.mailbox
    world.advance(11 * 3600 + 50 * 60)  # 23:50
    world.directory.delete(user.guid, tree=False)  # reaches DC2 at 00:05, after the pass
    world.advance(2 * 86400)  # both events are processed late, but in order
    expected = datetime(2026, 11, 3, tzinfo=UTC)
    assert mailbox_state(world, user.mailbox).disconnected_at == expected


def test_purge_needs_a_disconnected_mailbox_then_removes_it() -> None:
    world = new_world(version=E2013)
    user = add_user(world, "Ann Lee")
    assert user.mailbox
    with pytest.raises(PermanentError, match="run the cleanup agent first") as refused:
        world.exchange.purge_mailboxes("EXCH01", [user.mailbox])
    assert "EXCH01" in str(refused.value) and str(user.mailbox) in str(refused.value)
    world.exchange.disable_mailboxes("EXCH01", [user.guid])
    world.exchange.run_cleanup_agent("EXCH01", [STORE_DN])
    world.exchange.purge_mailboxes("EXCH01", [user.mailbox])
    assert world.exchange.mailboxes("EXCH01") == []


def test_disable_clears_the_exchange_attributes_through_the_servers_dc() -> None:
    world = new_world(dcs=[("DC1", 300), ("DC2", 900)], version=E2013)
    user = add_user(world, "Ann Lee")
    world.exchange.disable_mailboxes("EXCH01", [user.guid])
    on_dc2 = world.directory.read([user.guid], "DC2")[user.guid]
    assert not on_dc2.mail_enabled
    assert not any(on_dc2.get(name) for name in EXCHANGE_ATTRIBUTES)
    assert world.directory.read([user.guid], "DC1")[user.guid].mail_enabled
    world.advance(300)
    assert not world.directory.read([user.guid], "DC1")[user.guid].mail_enabled


def test_reconnect_is_refused_while_the_user_is_mail_enabled_as_the_servers_dc_sees_it() -> None:
    world = new_world(version=ExchangeVersion.E2003)
    original = add_user(world, "Original")
    user = add_user(world, "Ann Lee")
    assert original.mailbox
    world.directory.write("DC2", original.guid, {"msExchMailboxGuid": None}, operation="test")
    world.advance(86400)  # the nightly pass disconnects the original mailbox
    world.directory.modify(user.guid, dict.fromkeys(EXCHANGE_ATTRIBUTES))  # on DC1
    with pytest.raises(PermanentError, match="still mail-enabled as DC2 sees it"):
        world.exchange.reconnect_mailboxes("EXCH01", [(original.mailbox, user.guid)])
    world.advance(900)
    world.exchange.reconnect_mailboxes("EXCH01", [(original.mailbox, user.guid)])
    rehomed = world.directory.read([user.guid], "DC2")[user.guid]
    assert rehomed.get("msExchMailboxGuid") == str(original.mailbox)
    assert rehomed.get("homeMDB") == STORE_DN
    assert rehomed.get("msExchHomeServerName") == world.exchange.default_legacy_dn("EXCH01")
    assert rehomed.get("legacyExchangeDN") == original.legacy_dn
    assert rehomed.get("mailNickname") == "annlee"
    state = mailbox_state(world, original.mailbox)
    assert state.owner == user.guid and not state.disconnected


def test_reconnect_is_refused_on_exchange_2000() -> None:
    world = new_world(version=ExchangeVersion.E2000)
    user = add_user(world, "Ann Lee")
    assert user.mailbox
    with pytest.raises(PermanentError, match=r"no Exchange_Mailbox\.Reconnect") as refused:
        world.exchange.reconnect_mailboxes("EXCH01", [(user.mailbox, user.guid)])
    assert "LDAP" in (refused.value.hint or "")


def test_mail_is_queued_while_a_transport_service_is_stopped_and_delivered_on_start() -> None:
    world = new_world(version=ExchangeVersion.E2003, server_dc="DC1")
    user = add_user(world, "Ann Lee")
    assert user.mailbox
    item = MailItem("m-1", "Inbox", "hello", {"from": "bob@example.com"})
    world.exchange.set_services("EXCH01", ["SMTPSVC"], ServiceState.STOPPED)
    assert world.deliver("EXCH01", user.legacy_dn.upper(), item) == "queued"
    assert mailbox_state(world, user.mailbox).item_ids == ()
    world.exchange.set_services("EXCH01", ["SMTPSVC"], ServiceState.RUNNING)
    assert mailbox_state(world, user.mailbox).item_ids == ("m-1",)
    assert world.deliver("EXCH01", "/o=Corp/cn=nobody", item) == "undeliverable"


def test_first_delivery_creates_the_mailbox_in_the_users_home_store() -> None:
    world = new_world(version=E2013, server_dc="DC1")
    user = add_user(world, "Ann Lee", mailbox=False)
    mailbox, legacy_dn = uuid4(), "/o=Corp/ou=First Administrative Group/cn=Recipients/cn=ann"
    world.directory.modify(
        user.guid,
        {"homeMDB": STORE_DN, "legacyExchangeDN": legacy_dn, "msExchMailboxGuid": str(mailbox)},
    )
    assert world.exchange.mailboxes("EXCH01") == []
    assert world.deliver("EXCH01", legacy_dn, MailItem("m-1", "Inbox", "hi")) == "delivered"
    state = mailbox_state(world, mailbox)
    assert state.item_ids == ("m-1",) and state.owner == user.guid and state.store_dn == STORE_DN
    assert state.legacy_dn == legacy_dn and state.display_name == "Ann Lee"


def test_services_report_and_refuse_unknown_names_listing_the_servers_services() -> None:
    world = new_world(version=ExchangeVersion.E2003)
    states = world.exchange.service_states("EXCH01", ["MSExchangeMTA", "SMTPSVC"])
    assert states == {"MSExchangeMTA": ServiceState.RUNNING, "SMTPSVC": ServiceState.RUNNING}
    with pytest.raises(PermanentError, match="MSExchangeTransport") as unknown:
        world.exchange.set_services("EXCH01", ["MSExchangeTransport"], ServiceState.STOPPED)
    assert "its services: MSExchangeIS, MSExchangeMTA, SMTPSVC" in str(unknown.value)
    assert world.exchange.service_states("EXCH01", ["SMTPSVC"])["SMTPSVC"] is ServiceState.RUNNING


def test_an_unknown_server_is_a_permanent_error() -> None:
    world = new_world()
    with pytest.raises(PermanentError, match="unknown Exchange server; known: EXCH01"):
        world.exchange.stores("EXCH99")


@pytest.mark.parametrize("to_disk", [False, True], ids=["memory", "run directory"])
def test_export_then_import_keeps_item_ids_and_is_idempotent(to_disk: bool, tmp_path: Path) -> None:
    world = new_world(version=E2013)
    world.attach_run(tmp_path if to_disk else None)
    blank = add_user(world, "Blank", items=2)
    original = add_user(world, "Original", items=1)
    assert blank.mailbox and original.mailbox
    assert world.exchange.exports("EXCH01", [blank.mailbox]) == {}
    ref = world.exchange.export_mail("EXCH01", [blank.mailbox])[blank.mailbox]
    assert ref.item_ids == ("blank-0", "blank-1")
    assert world.exchange.exports("EXCH01", [blank.mailbox, original.mailbox]) == {
        blank.mailbox: ref
    }
    if to_disk:
        path = tmp_path / "backups" / "mail" / "EXCH01" / f"{blank.mailbox}.json"
        assert ref.location == str(path)
        assert json.loads(path.read_text())["items"][0] == {
            "id": "blank-0",
            "folder": "Inbox",
            "subject": "message 0",
        }
        assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    else:
        assert ref.location == f"memory:EXCH01/{blank.mailbox}"
    for _ in range(2):
        world.exchange.import_mail("EXCH01", [(original.mailbox, ref)])
        assert mailbox_state(world, original.mailbox).item_ids == (
            "original-0",
            "blank-0",
            "blank-1",
        )


def test_import_needs_a_connected_mailbox() -> None:
    world = new_world(version=E2013)
    user = add_user(world, "Ann Lee", items=1)
    assert user.mailbox
    ref = world.exchange.export_mail("EXCH01", [user.mailbox])[user.mailbox]
    world.exchange.disable_mailboxes("EXCH01", [user.guid])
    with pytest.raises(PermanentError, match="not connected to any user"):
        world.exchange.import_mail("EXCH01", [(user.mailbox, ref)])


def test_a_rehearsal_is_an_independent_copy_at_the_same_time_without_faults() -> None:
    world = new_world(version=E2013)
    user = add_user(world, "Ann Lee", items=1)
    assert user.mailbox
    ref = world.exchange.export_mail("EXCH01", [user.mailbox])[user.mailbox]
    world.directory.delete(user.guid, tree=False)  # still pending for DC2
    world.faults.fail("*", times=5)
    copy = world.rehearsal()
    assert copy.clock.now() == world.clock.now() and copy.scenario == world.scenario
    assert copy.exchange.exports("EXCH01", [user.mailbox]) == {user.mailbox: ref}
    copy.advance(900)
    copy.exchange.run_cleanup_agent("EXCH01", [STORE_DN])
    copy.exchange.purge_mailboxes("EXCH01", [user.mailbox])
    copy.exchange.set_services("EXCH01", ["MSExchangeTransport"], ServiceState.STOPPED)
    world.faults.clear()
    assert world.clock.now() != copy.clock.now()
    assert user.guid in world.directory.read([user.guid], "DC2")
    assert world.exchange.mailboxes("EXCH01", [user.mailbox])
    assert world.exchange.service_states("EXCH01", ["MSExchangeTransport"]) == {
        "MSExchangeTransport": ServiceState.RUNNING
    }


def test_a_rehearsal_copies_the_exports_of_a_run_into_memory(tmp_path: Path) -> None:
    world = new_world(version=E2013)
    world.attach_run(tmp_path)
    user = add_user(world, "Ann Lee", items=2)
    other = add_user(world, "Bob Ray", items=1)
    assert user.mailbox and other.mailbox
    world.exchange.export_mail("EXCH01", [user.mailbox])
    copy = world.rehearsal()
    copy.attach_run(None)
    [ref] = copy.exchange.exports("EXCH01", [user.mailbox]).values()
    assert ref.location == f"memory:EXCH01/{user.mailbox}" and ref.item_ids == (
        "annlee-0",
        "annlee-1",
    )
    copy.exchange.export_mail("EXCH01", [other.mailbox])
    assert [path.name for path in (tmp_path / "backups" / "mail" / "EXCH01").iterdir()] == [
        f"{user.mailbox}.json"
    ]
