"""World files (``remediate.world/1``): loading, saving, round trips, and errors with JSON paths."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes_support import START, STORE_DN, User, add_user, new_world
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remediate.errors import InputError, PermanentError, WorldFormatError
from remediate.fakes import FakeWorld, load_world, save_world, world_from_json, world_to_json
from remediate.fakes.worldfile import WorldAssembler
from remediate.model import ExchangeVersion, MailItem, ServiceState, UserQuery, utc
from remediate.ports import ManualActionRequired

OU_GUID = "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
USER_GUID = "0b6a1f2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
MAILBOX_GUID = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"
OLD_MAILBOX_GUID = "9e8d7c6b-5a4f-4e3d-9c2b-1a0f9e8d7c6b"
ANN_LEGACY_DN = "/o=Corp/ou=First Administrative Group/cn=Recipients/cn=alee"


def minimum_document() -> dict[str, Any]:
    """The minimum shape of a world file (docs/ARCHITECTURE.md, World files), filled in."""
    staff = {
        "dn": "OU=Staff,DC=corp,DC=example",
        "object_class": "organizationalUnit",
        "guid": OU_GUID,
        "when_created": "2026-01-01T00:00:00Z",
        "protected": True,
        "attributes": {},
    }
    ann = {
        "dn": "CN=Ann Lee,OU=Staff,DC=corp,DC=example",
        "object_class": "user",
        "guid": USER_GUID,
        "when_created": "2026-11-01T10:02:00Z",
        "protected": False,
        "attributes": {
            "sAMAccountName": "alee",
            "displayName": "Ann Lee",
            "mailNickname": "alee",
            "legacyExchangeDN": ANN_LEGACY_DN,
            "homeMDB": STORE_DN,
            "msExchHomeServerName": "/o=Corp/cn=EXCH01",
            "msExchMailboxGuid": MAILBOX_GUID,
        },
    }
    mailboxes = [
        {
            "guid": MAILBOX_GUID,
            "legacy_dn": ANN_LEGACY_DN,
            "display_name": "Ann Lee",
            "disconnected_at": None,
            "items": [{"id": "m-1", "folder": "Inbox", "subject": "hi", "size": 1234}],
        },
        {
            "guid": OLD_MAILBOX_GUID,
            "legacy_dn": "/o=Corp/cn=old",
            "display_name": "Old",
            "disconnected_at": "2026-11-01T10:30:00Z",
            "items": [],
        },
    ]
    store = {
        "name": "Mailbox Store (EXCH01)",
        "storage_group": "First Storage Group",
        "dn": STORE_DN,
        "mailboxes": mailboxes,
    }
    server = {
        "name": "EXCH01",
        "version": "2003",
        "dc": "DC2",
        "services": {"MSExchangeMTA": "running", "SMTPSVC": "running"},
        "stores": [store],
    }
    dcs = [{"name": "DC1", "replication_delay_s": 0}, {"name": "DC2", "replication_delay_s": 900}]
    return {
        "format": "remediate.world/1",
        "directory": {
            "domain": "corp.example",
            "base_dn": "DC=corp,DC=example",
            "dcs": dcs,
            "objects": [staff, ann],
        },
        "exchange": {"servers": [server]},
    }


def test_the_minimum_shape_loads_with_every_object_on_every_dc() -> None:
    world = world_from_json(minimum_document())
    for dc in ("DC1", "DC2"):
        users = world.directory.find_users(UserQuery(), dc)
        assert [user.sam_account_name for user in users] == ["alee"]
    boxes = {box.guid.hex[:4]: box for box in world.exchange.mailboxes("EXCH01")}
    assert boxes["5d4c"].owner is not None and boxes["5d4c"].item_ids == ("m-1",)
    assert boxes["9e8d"].disconnected_at == utc("2026-11-01T10:30:00Z")
    assert world.clock.now() == utc("2026-11-01T11:30:00Z")  # latest time in the file + 1 h
    assert world.organisation == "corp.example" and world.scenario is None


def test_an_empty_world_starts_at_the_default_clock() -> None:
    document = minimum_document()
    document["directory"]["objects"] = []
    document["exchange"]["servers"] = []
    assert world_from_json(document).clock.now() == utc("2026-11-01T00:00:00Z")


def test_saving_writes_no_extension_key_that_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "world.json"
    save_world(world_from_json(minimum_document()), path)
    saved = json.loads(path.read_text())
    assert set(saved) == {"format", "clock", "directory", "exchange"}
    assert set(saved["directory"]) == {"domain", "base_dn", "dcs", "objects"}
    assert set(saved["exchange"]["servers"][0]) == {"name", "version", "dc", "services", "stores"}
    item = saved["exchange"]["servers"][0]["stores"][0]["mailboxes"][0]["items"][0]
    assert item == {"id": "m-1", "folder": "Inbox", "subject": "hi", "size": 1234}
    assert [p.name for p in tmp_path.iterdir()] == ["world.json"]  # no temporary left


def test_the_scenario_is_kept_as_it_is() -> None:
    document = minimum_document()
    document["scenario"] = {"name": "kb842101", "seed": 7, "size": 25, "parameters": {"ou": "x"}}
    world = world_from_json(document)
    assert world.scenario == document["scenario"]
    assert world_to_json(world)["scenario"] == document["scenario"]


def test_pending_replication_lands_at_the_same_moment_after_save_and_load(tmp_path: Path) -> None:
    world = new_world(dcs=[("DC1", 0), ("DC2", 900), ("DC3", 1800)])
    user = add_user(world, "Ann Lee")
    world.directory.delete(user.guid, tree=False)
    world.advance(1000)
    world.directory.write("DC3", user.guid, {"title": "lagging"}, operation="test")
    save_world(world, tmp_path / "w.json")
    saved = json.loads((tmp_path / "w.json").read_text())
    assert [a["dc"] for a in saved["directory"]["pending"]["arrivals"]] == ["DC3"]
    assert set(saved["directory"]["pending"]["views"]) == {"DC3"}
    loaded = load_world(tmp_path / "w.json")
    for each in (world, loaded):
        assert not each.directory.read([user.guid], "DC3")[user.guid].deleted
        each.advance(799)
        assert user.guid in each.directory.read([user.guid], "DC3")
        each.advance(1)
        assert each.directory.read([user.guid], "DC3") == {}
    assert observe(world) == observe(loaded)


def observe(world: FakeWorld) -> object:
    """Everything the ports show, on every DC and server."""
    directory, exchange = world.directory, world.exchange
    guids = sorted({entry.guid for view in directory.views() for entry in view.entries()})
    dcs = directory.domain_controllers()
    names = [server.name for server in exchange.servers()]
    records = {record.info.name: record for record in exchange.records()}
    return (
        (world.clock.now(), world.organisation, world.scenario, directory.writable_dc(), dcs),
        {dc: directory.read(guids, dc, include_deleted=True) for dc in dcs},
        {dc: [user.guid for user in directory.find_users(UserQuery(), dc)] for dc in dcs},
        (exchange.servers(), {name: exchange.stores(name) for name in names}),
        {name: sorted(exchange.mailboxes(name), key=lambda box: box.guid) for name in names},
        {name: exchange.service_states(name, list(records[name].services)) for name in names},
        {name: (r.queue, r.legacy_dn, r.cleanup_interval_s) for name, r in records.items()},
    )


@dataclass(frozen=True)
class Case:
    """A small world, and what happens to it before it is saved."""

    delays: tuple[float, float, float]
    version: ExchangeVersion
    server_dc: str
    writable_dc: str | None
    interval: float
    items: list[int]
    operations: list[tuple[Any, ...]]

    def build(self) -> FakeWorld:
        world = new_world(
            dcs=list(zip(("DC1", "DC2", "DC3"), self.delays, strict=True)),
            version=self.version,
            server_dc=self.server_dc,
            writable_dc=self.writable_dc,
            cleanup_interval_s=self.interval,
        )
        users = [
            add_user(world, f'User {n}, "{n}"', items=count) for n, count in enumerate(self.items)
        ]
        for operation in self.operations:
            with contextlib.suppress(PermanentError, ManualActionRequired):
                perform(world, users, operation)
        return world


OPERATIONS = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 9), st.booleans()),
    st.tuples(st.just("modify"), st.integers(0, 9), st.sampled_from(["DC1", "DC2", "DC3"])),
    st.tuples(st.just("disable"), st.integers(0, 9)),
    st.tuples(st.just("deliver"), st.integers(0, 9)),
    st.tuples(st.just("advance"), st.sampled_from([0.25, 30, 600, 1000, 3 * 3600, 86400])),
    st.tuples(st.just("transport"), st.sampled_from(list(ServiceState))),
    st.tuples(st.just("cleanup")),
)
CASES = st.builds(
    Case,
    delays=st.tuples(
        st.sampled_from([0, 300]), st.sampled_from([0, 900]), st.sampled_from([60, 1800])
    ),
    version=st.sampled_from([ExchangeVersion.E2003, ExchangeVersion.E2013]),
    server_dc=st.sampled_from(["DC1", "DC2", "DC3"]),
    writable_dc=st.sampled_from([None, "DC2"]),
    interval=st.sampled_from([86400, 3600.5]),
    items=st.lists(st.integers(0, 3), max_size=4),
    operations=st.lists(OPERATIONS, max_size=12),
)


def perform(world: FakeWorld, users: list[User], operation: tuple[Any, ...]) -> None:
    kind, *rest = operation
    if kind == "advance":
        world.advance(rest[0])
    elif kind == "transport":
        transport = world.exchange.records()[0].info.version.transport_services[0]
        world.exchange.set_services("EXCH01", [transport], rest[0])
    elif kind == "cleanup":
        world.exchange.run_cleanup_agent("EXCH01", [STORE_DN])
    elif users:
        user = users[rest[0] % len(users)]
        if kind == "delete":
            world.directory.delete(user.guid, tree=rest[1])
        elif kind == "modify":
            title = {"title": str(world.clock.now())}
            world.directory.write(rest[1], user.guid, title, operation="test")
        elif kind == "disable":
            world.exchange.disable_mailboxes("EXCH01", [user.guid])
        else:
            item = MailItem(f"d{world.clock.now()}", "Inbox", "new")
            world.deliver("EXCH01", user.legacy_dn, item)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CASES)
def test_a_saved_world_loads_back_equal_in_every_observable_way(case: Case) -> None:
    world = case.build()
    document = world_to_json(world)
    loaded = world_from_json(copy.deepcopy(document))
    assert world_to_json(loaded) == document
    assert observe(loaded) == observe(world)
    for each in (world, loaded):
        each.advance(2 * 86400 + 0.5)
    assert observe(loaded) == observe(world)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation: put ``value`` at ``path`` (dotted; numbers index arrays; None deletes)."""

    def mutate(document: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = document
        for key in parents:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value

    return mutate


MAILBOXES = "exchange.servers.0.stores.0.mailboxes"
MALFORMED = [
    (_set("format", None), "$.format", "missing"),
    (_set("format", "remediate.world/2"), "$.format", "'remediate.world/2'"),
    (_set("directory", None), "$.directory", "missing: expected an object"),
    (_set("directory.dcs", []), "$.directory.dcs", "at least one DC"),
    (_set("directory.dcs.1.name", "DC1"), "$.directory.dcs[1].name", "duplicate DC name"),
    (
        _set("directory.dcs.1.replication_delay_s", "900"),
        "$.directory.dcs[1].replication_delay_s",
        "number",
    ),
    (_set("directory.base_dn", "corp.example"), "$.directory.base_dn", "not a distinguished name"),
    (_set("directory.objects", {}), "$.directory.objects", "expected an array, got an object"),
    (
        _set("directory.objects.1.dn", None),
        "$.directory.objects[1].dn",
        "missing: expected a string",
    ),
    (
        _set("directory.objects.1.dn", "CN=a,,DC=x"),
        "$.directory.objects[1].dn",
        "not a distinguished name",
    ),
    (_set("directory.objects.1.guid", "42"), "$.directory.objects[1].guid", "expected a UUID"),
    (
        _set("directory.objects.1.guid", OU_GUID),
        "$.directory.objects[1].guid",
        f"duplicate objectGUID {OU_GUID}, also at $.directory.objects[0].guid",
    ),
    (
        _set("directory.objects.1.dn", "ou=STAFF,dc=corp,dc=example"),
        "$.directory.objects[1].dn",
        "duplicate DN",
    ),
    (
        _set("directory.objects.1.when_created", "yesterday"),
        "$.directory.objects[1].when_created",
        "ISO 8601",
    ),
    (
        _set("directory.objects.1.protected", "no"),
        "$.directory.objects[1].protected",
        "true or false",
    ),
    (
        _set("directory.objects.1.attributes.msExchMailboxGuid", "x"),
        "$.directory.objects[1].attributes.msExchMailboxGuid",
        "expected a UUID",
    ),
    (
        _set("directory.objects.1.attributes.memberOf", [1]),
        "$.directory.objects[1].attributes.memberOf",
        "a string or an array of strings",
    ),
    (
        _set("directory.objects.1.deleted", True),
        "$.directory.objects[1].deleted",
        "directory.tombstones",
    ),
    (
        _set("directory.objects.1.usn_changed", -1),
        "$.directory.objects[1].usn_changed",
        "whole number",
    ),
    (_set("directory.writable_dc", "DC9"), "$.directory.writable_dc", "'DC9' is not a DC"),
    (
        _set(
            "directory.pending",
            {
                "arrivals": [
                    {
                        "dc": "DC2",
                        "at": "2026-11-01T12:00:00Z",
                        "object": {
                            "dn": "CN=x,DC=x",
                            "object_class": "user",
                            "guid": MAILBOX_GUID,
                            "when_created": "2026-11-01T00:00:00Z",
                        },
                    }
                ]
            },
        ),
        "$.directory.pending.arrivals[0].object.guid",
        "no object or tombstone",
    ),
    (
        _set("directory.pending", {"views": {"DC 9": []}}),
        '$.directory.pending.views["DC 9"]',
        "'DC 9' is not a DC of directory.dcs (DC1, DC2)",
    ),
    (
        _set("exchange.servers.0.version", "5.5"),
        "$.exchange.servers[0].version",
        "valid: 2000, 2003, 2007, 2010, 2013, 2016, 2019, SE",
    ),
    (
        _set("exchange.servers.0.dc", "DC9"),
        "$.exchange.servers[0].dc",
        "not a DC of directory.dcs (DC1, DC2)",
    ),
    (
        _set("exchange.servers.0.services.SMTPSVC", "paused"),
        "$.exchange.servers[0].services.SMTPSVC",
        "running, stopped",
    ),
    (
        _set("exchange.servers.0.cleanup_interval_s", 0),
        "$.exchange.servers[0].cleanup_interval_s",
        "> 0",
    ),
    (
        _set(f"{MAILBOXES}.1.guid", MAILBOX_GUID),
        "$.exchange.servers[0].stores[0].mailboxes[1].guid",
        "duplicate mailbox GUID",
    ),
    (
        _set(f"{MAILBOXES}.0.guid", "{not-a-guid}"),
        "$.exchange.servers[0].stores[0].mailboxes[0].guid",
        "UUID",
    ),
    (
        _set(f"{MAILBOXES}.0.items.0.id", None),
        "$.exchange.servers[0].stores[0].mailboxes[0].items[0].id",
        "missing",
    ),
    (
        _set(f"{MAILBOXES}.1.disconnected_at", 5),
        "$.exchange.servers[0].stores[0].mailboxes[1].disconnected_at",
        "expected a string, got a number",
    ),
    (
        _set("exchange.servers.0.stores.0.dn", "nope"),
        "$.exchange.servers[0].stores[0].dn",
        "distinguished name",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "path", "expected"), MALFORMED, ids=[m[1] + " " + m[2] for m in MALFORMED]
)
def test_a_malformed_world_names_the_json_path_and_what_is_expected(
    mutate: Callable[[dict[str, Any]], None], path: str, expected: str
) -> None:
    document = minimum_document()
    mutate(document)
    with pytest.raises(WorldFormatError) as error:
        world_from_json(document, source="w.json")
    assert error.value.json_path == path
    assert expected in error.value.message
    assert str(error.value).startswith(f"w.json: {path}: ")


def test_an_assembled_world_holds_the_mailboxes_read_ahead_as_a_loaded_one_does() -> None:
    document = minimum_document()
    store = document["exchange"]["servers"][0]["stores"][0]
    assembler = WorldAssembler(source="scenario")
    read = [assembler.mailbox(box) for box in store["mailboxes"]]
    expected = world_to_json(world_from_json(copy.deepcopy(document)))
    store["mailboxes"] = []
    assert world_to_json(assembler.world(document, {store["dn"]: read})) == expected


def test_a_malformed_mailbox_read_ahead_names_where_it_was_read() -> None:
    assembler = WorldAssembler(source="scenario")
    box = minimum_document()["exchange"]["servers"][0]["stores"][0]["mailboxes"][0]
    assembler.mailbox(box)
    with pytest.raises(WorldFormatError) as error:
        assembler.mailbox(box)
    assert error.value.json_path == "$.mailboxes[1].guid"
    assert "duplicate mailbox GUID" in error.value.message


def test_a_home_mdb_naming_no_store_is_fine() -> None:
    document = minimum_document()
    document["directory"]["objects"][1]["attributes"]["homeMDB"] = "CN=Gone,DC=corp,DC=example"
    assert world_from_json(document).directory.find_users(UserQuery(), "DC1")


def test_unreadable_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_world(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(WorldFormatError, match="not valid JSON") as error:
        load_world(tmp_path / "bad.json")
    assert error.value.json_path == "$"
    with pytest.raises(WorldFormatError, match=r"^\$: expected an object, got an array"):
        world_from_json([])


def test_times_keep_their_microseconds_through_a_round_trip() -> None:
    world = new_world()
    world.advance(0.123456)
    user = add_user(world, "Ann Lee", created=START + timedelta(microseconds=7))
    loaded = world_from_json(world_to_json(world))
    assert loaded.clock.now() == world.clock.now()
    assert loaded.directory.read([user.guid], "DC1")[user.guid] == user.entry
