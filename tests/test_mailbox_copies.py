"""A mailbox GUID is not unique on a server, and a repair acts on the mailbox itself only.

Beside the live mailbox, a store may hold copies under its GUID: a 2003 recovery storage group
(KB824126) or a 2010+ recovery database holds mailboxes restored from a backup, and a mailbox move
leaves a soft-deleted copy in its source database (DisconnectReason SoftDeleted). Neither is ever
reconnected, exported or purged; both are reported and left as they were. A DAG's passive
database copies are not read at all (Get-MailboxStatistics -Server without -IncludePassive), so
a replicated database counts once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID

import pytest
from kb_support import load, parameters, scenario, snapshot
from winrm_support import WinRmWorld, serve, snapshot_world

from remediate import Engine, get_playbook
from remediate.dn import parent_dn
from remediate.engine.runner import EXIT_DONE, EXIT_PENDING, RunResult
from remediate.errors import PermanentError
from remediate.fakes import FakeWorld, world_from_json
from remediate.fakes.exchange import FakeMailbox
from remediate.fakes.packed import PackedItems
from remediate.model import RECOVERY_STORAGE_GROUP, MailboxCopy, MailboxInfo, MailItem
from remediate.ports import World
from remediate.testing import apply_confirmed, assert_plan_matches_apply

MOVED_AT = datetime(2026, 10, 20, 9, 0, tzinfo=UTC)
COPY_LEFT_ALONE = "mailbox-copy-left-alone"

Copies = dict[tuple[str, UUID], MailboxInfo]


def _copy_of(box: MailboxInfo, *, soft_deleted: bool = False) -> FakeMailbox:
    """What a restore or a move leaves: the same GUID, legacyExchangeDN and name, and items of
    its own (ids the live mailbox does not have: an export of the copy would show)."""
    kind = "moved" if soft_deleted else "restored"
    items = [MailItem(f"{box.guid}/{kind}-{n}", "Inbox", f"{kind} {n}") for n in range(3)]
    return FakeMailbox(
        box.guid,
        box.legacy_dn,
        box.display_name,
        MOVED_AT if soft_deleted else box.disconnected_at,
        PackedItems(items),
        soft_deleted=soft_deleted,
    )


def add_copies(world: FakeWorld, *, soft_deleted: bool) -> Copies:
    """A recovery storage group (2003) or recovery database (2010+) on each server holding a
    restored copy of every mailbox there; on 2010+ also a database with a soft-deleted copy of
    each (the leftover of a move into the live database). Returns the copies by (store, GUID)."""
    exchange = world.exchange
    for server in exchange.servers():
        live = exchange.stores(server.name)[0]
        boxes = [box for box in exchange.mailboxes(server.name) if box.live]
        if server.version.legacy:
            group_dn = f"CN={RECOVERY_STORAGE_GROUP},{parent_dn(parent_dn(live.dn))}"
            recovery = exchange.add_store(
                server.name,
                live.name,
                RECOVERY_STORAGE_GROUP,
                f"CN={live.name},{group_dn}",
                recovery=True,
            )
        else:
            recovery = exchange.add_store(
                server.name, "RDB01", "", f"CN=RDB01,{parent_dn(live.dn)}", recovery=True
            )
        exchange.add_mailboxes(recovery.dn, [_copy_of(box) for box in boxes])
        if soft_deleted:
            old = exchange.add_store(server.name, "DB-old", "", f"CN=DB-old,{parent_dn(live.dn)}")
            exchange.add_mailboxes(old.dn, [_copy_of(box, soft_deleted=True) for box in boxes])
    return {
        box.key: box
        for server in exchange.servers()
        for box in exchange.mailboxes(server.name)
        if not box.live
    }


def assert_copies_untouched(world: World, copies: Copies) -> None:
    now = {
        box.key: box
        for server in world.exchange.servers()
        for box in world.exchange.mailboxes(server.name)
        if not box.live
    }
    assert {key: (box.copy, box.item_count, box.disconnected_at) for key, box in now.items()} == {
        key: (box.copy, box.item_count, box.disconnected_at) for key, box in copies.items()
    }


@pytest.mark.parametrize("version", ["2003", "2016"])
def test_the_fake_lists_every_copy_and_acts_only_on_the_mailbox_itself(version: str) -> None:
    world = load(scenario("kb842101", 2, seed=3, version=version))
    copies = add_copies(world, soft_deleted=version != "2003")
    exchange = world.exchange
    live = next(box for box in exchange.mailboxes("EXCH01") if box.live and box.item_count)
    found = exchange.mailboxes("EXCH01", [live.guid])
    expected = {MailboxCopy.LIVE, MailboxCopy.RECOVERY}
    if version != "2003":
        expected.add(MailboxCopy.SOFT_DELETED)
    assert {box.copy for box in found} == expected
    assert len({box.key for box in found}) == len(found)  # one per store

    copy = next(box for box in found if not box.live)
    with pytest.raises(PermanentError, match="copy of it is in the store"):
        exchange.export_mail("EXCH01", [live.guid], {live.guid: copy.store_dn})
    ref = exchange.export_mail("EXCH01", [live.guid], {live.guid: live.store_dn})[live.guid]
    assert ref.item_ids == live.item_ids  # the live mailbox's items, not the copy's
    assert_copies_untouched(world, copies)


def test_a_second_live_mailbox_with_one_guid_is_refused() -> None:
    world = load(scenario("kb842101", 2, seed=3, version="2016"))
    live = next(box for box in world.exchange.mailboxes("EXCH01"))
    other = world.exchange.add_store("EXCH01", "DB2", "", f"CN=DB2,{parent_dn(live.store_dn)}")
    with pytest.raises(ValueError, match="already used"):
        world.exchange.add_mailboxes(other.dn, [_copy_of(live)])


def _findings(result: RunResult) -> list[str]:
    return [finding.target for finding in result.findings if finding.kind == COPY_LEFT_ALONE]


@pytest.mark.parametrize("version", ["2003", "2016"])
def test_kb278447_repairs_the_live_mailboxes_and_reports_the_copies(
    engine: Engine,
    version: str,
) -> None:
    world = load(scenario("kb278447", 4, seed=2, version=version))
    copies = add_copies(world, soft_deleted=version != "2003")
    playbook = get_playbook("kb278447")
    planned = engine.plan(playbook, world, {"purge_blank": "true"})
    assert planned.exit_code == EXIT_PENDING
    assert _findings(planned), "the copies of the repaired users' mailboxes are reported"
    applied = apply_confirmed(engine, playbook, world, {"purge_blank": "true"})
    assert applied.exit_code == EXIT_DONE
    assert_copies_untouched(world, copies)
    assert engine.plan(playbook, world, {"purge_blank": "true"}).exit_code == EXIT_DONE


@pytest.mark.parametrize("version", ["2003", "2016"])
def test_kb842101_purges_the_live_mailboxes_and_verifies_despite_the_copies(
    engine: Engine,
    version: str,
) -> None:
    doc = scenario("kb842101", 4, seed=2, version=version)
    world = load(doc)
    copies = add_copies(world, soft_deleted=version != "2003")
    params = parameters(doc)
    playbook = get_playbook("kb842101")
    planned = engine.plan(playbook, world.rehearsal(), params)
    assert planned.exit_code == EXIT_PENDING and _findings(planned)
    applied = assert_plan_matches_apply(engine, playbook, world, params)
    assert applied.exit_code == EXIT_DONE
    assert_copies_untouched(world, copies)


@pytest.fixture(params=["2003", "2016"])
def copied_world(request: pytest.FixtureRequest) -> Iterator[tuple[FakeWorld, Copies]]:
    world = load(scenario("kb278447", 3, seed=4, version=str(request.param)))
    yield world, add_copies(world, soft_deleted=request.param != "2003")


@pytest.mark.winrm
def test_over_winrm_the_scripts_are_given_the_store_and_leave_the_copies(
    engine: Engine,
    copied_world: tuple[FakeWorld, Copies],
) -> None:
    fake, copies = copied_world
    playbook = get_playbook("kb278447")
    with serve(fake) as site:
        world = WinRmWorld(fake, site.exchange())
        planned = engine.plan(playbook, world, {"purge_blank": "true"})
        assert planned.exit_code == EXIT_PENDING and _findings(planned)
        assert (
            apply_confirmed(engine, playbook, world, {"purge_blank": "true"}).exit_code == EXIT_DONE
        )
        sent = [
            call
            for host in site.hosts.values()
            for call in host.calls
            if call.operation in ("purge", "reconnect", "export", "import")
        ]
    assert sent and all(
        call.parameters["stores"] and all(call.parameters["stores"]) for call in sent
    )
    assert_copies_untouched(fake, copies)


@pytest.mark.winrm
def test_a_snapshot_keeps_the_copies_so_the_inventory_plan_reports_them(
    engine: Engine,
    copied_world: tuple[FakeWorld, Copies],
) -> None:
    """The inventory's plan rehearses on a snapshot read through the scripts: the recovery
    store and the soft-deleted copies survive it, and are reported, not acted on."""
    fake, copies = copied_world
    playbook = get_playbook("kb278447")
    with serve(fake) as site:
        world = snapshot_world(site)
        rehearsal = world.rehearsal()
        planned = engine.plan(playbook, world, {"purge_blank": "true"})
    assert_copies_untouched(rehearsal, copies)
    assert planned.exit_code == EXIT_PENDING and _findings(planned)


def dag(world: FakeWorld) -> dict[str, str]:
    """Each server's database copied to every other server (one DAG); returns each database's
    DN by the server where its copy is active."""
    exchange = world.exchange
    names = [server.name for server in exchange.servers()]
    active = {name: exchange.stores(name)[0].dn for name in names}
    for name, dn in active.items():
        for other in names:
            if other != name:
                exchange.add_database_copy(dn, other)
    return active


def test_a_replicated_database_is_read_once_where_its_copy_is_active(engine: Engine) -> None:
    doc = scenario("kb842101", 6, seed=5, version="2016", servers=2)
    world = load(doc)
    databases = dag(world)
    listed = [box.key for name in databases for box in world.exchange.mailboxes(name)]
    assert len(listed) == len(set(listed))  # a passive copy is not read
    saved = snapshot(world)
    assert snapshot(world_from_json(saved)) == saved  # the DAG is kept
    assert [
        store.get("passive_copies")
        for server in saved["exchange"]["servers"]
        for store in server["stores"]
    ] == [[name] for name in reversed(databases)]

    first, second = databases
    moved = {box.guid for box in world.exchange.mailboxes(first)}
    world.exchange.activate_copy(databases[first], second)  # a switchover
    assert not world.exchange.mailboxes(first)
    assert moved <= {box.guid for box in world.exchange.mailboxes(second)}

    playbook = get_playbook("kb842101")
    planned = engine.plan(playbook, world, parameters(doc))
    assert planned.exit_code == EXIT_PENDING
    assert {r.endpoint for r in planned.changes if r.step == "purge-mailbox"} == {
        f"exchange:{second}"
    }  # both databases are active there now
    assert apply_confirmed(engine, playbook, world, parameters(doc)).exit_code == EXIT_DONE
