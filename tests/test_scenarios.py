"""The scenario builders: deterministic, well-formed worlds that hold exactly what each KB says."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ldap3.utils.dn import parse_dn

from remediate.fakes import world_from_json, world_to_json
from remediate.fakes.scenarios import (
    BASE_DN,
    KB278447_UPGRADED_AT,
    KB842101_CREATED_AFTER,
    KB842101_CREATED_BEFORE,
    KB842101_OU,
    KB842101_SIBLING_OU,
    SCENARIOS,
    VERSIONS,
    ScenarioError,
    escape_rdn_value,
    kb278447,
    kb842101,
    scenario_world,
)

World = dict[str, Any]
Builder = Callable[..., dict[str, object]]
SIZES = (1, 7, 500)
BUILDERS = sorted(SCENARIOS.items())
STAFF_OU = "OU=Staff," + BASE_DN


@cache
def built(name: str, size: int, seed: int = 1, version: str | None = None) -> World:
    """One world per arguments for the whole module (tests only read it)."""
    options = {"version": version} if version else {}
    world: World = SCENARIOS[name](size, seed, **options)
    return world


# -- reading a world ----------------------------------------------------------------------------


def objects(world: World) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = world["directory"]["objects"]
    return result


def users(world: World) -> list[dict[str, Any]]:
    return [entry for entry in objects(world) if entry["object_class"] == "user"]


def by_guid(world: World) -> dict[str, dict[str, Any]]:
    return {entry["guid"]: entry for entry in objects(world)}


def stores(world: World) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for server in world["exchange"]["servers"]:
        for store in server["stores"]:
            yield server, store


def mailboxes(world: World) -> list[dict[str, Any]]:
    return [box for _, store in stores(world) for box in store["mailboxes"]]


def mailbox_store(world: World) -> dict[str, str]:
    """Mailbox GUID -> DN of the store that holds it."""
    return {box["guid"]: store["dn"] for _, store in stores(world) for box in store["mailboxes"]}


def parent_of(dn: str) -> str:
    """``dn`` without its first RDN (ldap3 parses the escaping, independently of the builder)."""
    return ",".join(f"{kind}={value}" for kind, value, _ in parse_dn(dn)[1:])


def unescape(value: str) -> str:
    """An RFC 4514 value without its escaping (``\\c`` and ``\\XX`` hex pairs)."""
    raw = bytearray()
    index = 0
    while index < len(value):
        if value[index] == "\\":
            pair = value[index + 1 : index + 3]
            if re.fullmatch(r"[0-9A-Fa-f]{2}", pair):
                raw += bytes.fromhex(pair)
                index += 3
                continue
            index += 1
        raw += value[index].encode()
        index += 1
    return raw.decode()


def cn_of(dn: str) -> str:
    kind, value, _ = parse_dn(dn)[0]
    assert kind.upper() == "CN"
    return unescape(value)


def in_window(when: str) -> bool:
    return KB842101_CREATED_AFTER <= when <= KB842101_CREATED_BEFORE


# -- both scenarios -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "builder"), BUILDERS)
@pytest.mark.parametrize("size", SIZES)
def test_same_arguments_give_identical_json(name: str, builder: Builder, size: int) -> None:
    assert json.dumps(builder(size, 42)) == json.dumps(builder(size, 42))


@pytest.mark.parametrize(("name", "builder"), BUILDERS)
def test_another_seed_gives_another_world(name: str, builder: Builder) -> None:
    assert json.dumps(builder(7, 1)) != json.dumps(builder(7, 2))


@pytest.mark.parametrize(("name", "builder"), BUILDERS)
def test_scenario_block_records_how_the_world_was_made(name: str, builder: Builder) -> None:
    world: World = builder(7, 3, version="2010")
    scenario = world["scenario"]
    assert {key: scenario[key] for key in ("name", "seed", "size", "version")} == {
        "name": name, "seed": 3, "size": 7, "version": "2010"}  # fmt: skip
    assert all(isinstance(value, str) for value in scenario["parameters"].values())


@pytest.mark.parametrize(("name", "builder"), BUILDERS)
def test_world_is_plain_json(name: str, builder: Builder) -> None:
    world = builder(7, 1)
    assert json.loads(json.dumps(world)) == world


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize(
    ("size", "seed", "version"),
    [(1, 1, None), (7, 2, "2007"), (60, 3, "2016"), (500, 4, None), (230, 5, "2003")],
)  # fmt: skip
def test_a_scenario_world_is_the_world_its_document_describes(
    name: str, size: int, seed: int, version: str | None
) -> None:
    options = {"version": version} if version else {}
    from_document = world_to_json(world_from_json(SCENARIOS[name](size, seed, **options)))
    assert world_to_json(scenario_world(name, size, seed, version=version)) == from_document


def test_a_scenario_world_of_an_unknown_scenario_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match="kb842101, kb278447"):
        scenario_world("kb000000", 5, 1)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_scenario_world_refuses_what_its_document_refuses(name: str) -> None:
    with pytest.raises(ValueError, match="size"):
        scenario_world(name, 0, 1)
    with pytest.raises(ValueError, match="2000, 2003, 2007"):
        scenario_world(name, 5, 1, version="2002")


@pytest.mark.parametrize(("name", "builder"), BUILDERS)
@pytest.mark.parametrize("version", ["2002", "2003 ", "", "se"])
def test_unknown_version_is_refused_naming_the_valid_ones(
    name: str, builder: Builder, version: str
) -> None:
    with pytest.raises(ValueError, match="2000, 2003, 2007, 2010, 2013, 2016, 2019, SE"):
        builder(5, 1, version=version)


@pytest.mark.parametrize(("name", "builder"), BUILDERS)
@pytest.mark.parametrize("size", [0, -3, True])
def test_size_below_one_is_refused(name: str, builder: Builder, size: int) -> None:
    with pytest.raises(ValueError, match="size"):
        builder(size, 1)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize(
    ("size", "dcs", "servers"),
    [(1, ["DC1", "DC2"], ["EXCH01"]), (50, ["DC1", "DC2", "DC3"], ["EXCH01"]),
     (200, ["DC1", "DC2", "DC3"], ["EXCH01", "EXCH02"])],
)  # fmt: skip
def test_dcs_and_servers_grow_with_size(
    name: str, size: int, dcs: list[str], servers: list[str]
) -> None:
    world = built(name, size)
    directory = world["directory"]
    assert (directory["domain"], directory["base_dn"]) == ("corp.example", BASE_DN)
    assert [dc["name"] for dc in directory["dcs"]] == dcs
    delays = {dc["name"]: dc["replication_delay_s"] for dc in directory["dcs"]}
    assert delays["DC1"] == 0 and delays["DC2"] == 900
    assert [server["name"] for server in world["exchange"]["servers"]] == servers
    assert {server["dc"] for server in world["exchange"]["servers"]} == {"DC2"}


def test_users_are_spread_across_both_servers() -> None:
    world = built("kb842101", 500)
    homes = Counter(user["attributes"]["msExchHomeServerName"] for user in users(world))
    assert len(homes) == 2
    assert min(homes.values()) > 0.4 * sum(homes.values())


_MAILBOX_TRANSPORT = ("MSExchangeTransport", "MSExchangeDelivery", "MSExchangeSubmission")


@pytest.mark.parametrize(
    ("version", "transport"),
    [("2000", {"MSExchangeMTA", "SMTPSVC"}), ("2003", {"MSExchangeMTA", "SMTPSVC"}),
     ("2007", {"MSExchangeTransport"}), ("2010", {"MSExchangeTransport"}),
     ("2013", {*_MAILBOX_TRANSPORT, "MSExchangeFrontEndTransport"}),
     ("2016", {*_MAILBOX_TRANSPORT, "MSExchangeFrontEndTransport"}),
     ("2019", {*_MAILBOX_TRANSPORT, "MSExchangeFrontEndTransport"}),
     ("SE", {*_MAILBOX_TRANSPORT, "MSExchangeFrontEndTransport"})],
)  # fmt: skip
def test_servers_run_the_services_of_their_version(version: str, transport: set[str]) -> None:
    for server in built("kb278447", 1, version=version)["exchange"]["servers"]:
        assert server["version"] == version
        assert server["services"] == dict.fromkeys(sorted({*transport, "MSExchangeIS"}), "running")


@pytest.mark.parametrize(
    ("version", "store_name", "storage_group", "parent"),
    [("2003", "Mailbox Store (EXCH01)", "First Storage Group",
      "CN=First Storage Group,CN=InformationStore,CN=EXCH01,CN=Servers,"
      "CN=First Administrative Group,"),
     ("2007", "Mailbox Database (EXCH01)", "First Storage Group",
      "CN=First Storage Group,CN=InformationStore,CN=EXCH01,CN=Servers,"
      "CN=Exchange Administrative Group (FYDIBOHF23SPDLT),"),
     ("2016", "Mailbox Database (EXCH01)", "",
      "CN=Databases,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),")],
)  # fmt: skip
def test_stores_are_laid_out_as_their_version_does(
    version: str, store_name: str, storage_group: str, parent: str
) -> None:
    world = built("kb842101", 1, version=version)
    [(_, store)] = list(stores(world))
    assert (store["name"], store["storage_group"]) == (store_name, storage_group)
    assert store["dn"] == (
        f"CN={store_name},{parent}CN=Administrative Groups,CN=Corp,CN=Microsoft Exchange,"
        f"CN=Services,CN=Configuration,{BASE_DN}"
    )
    assert {user["attributes"]["homeMDB"] for user in users(world)} == {store["dn"]}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("size", SIZES)
def test_guids_are_unique_lowercase_version_4(name: str, size: int) -> None:
    world = built(name, size)
    object_guids = [entry["guid"] for entry in objects(world)]
    mailbox_guids = [box["guid"] for box in mailboxes(world)]
    for guids in (object_guids, mailbox_guids):
        assert len(set(guids)) == len(guids)
    for guid in object_guids + mailbox_guids:
        assert str(uuid.UUID(guid)) == guid and uuid.UUID(guid).version == 4


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("size", SIZES)
def test_item_ids_are_unique_across_the_organisation(name: str, size: int) -> None:
    ids = [item["id"] for box in mailboxes(built(name, size)) for item in box["items"]]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("size", SIZES)
def test_every_dn_parses_and_lies_in_the_domain(name: str, size: int) -> None:
    world = built(name, size)
    dns = [entry["dn"] for entry in objects(world)]
    dns += [store["dn"] for _, store in stores(world)]
    dns += [user["attributes"]["homeMDB"] for user in users(world)]
    for dn in dns:
        assert parse_dn(dn)
        assert dn.endswith("," + BASE_DN)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("size", SIZES)
def test_objects_come_after_their_parent(name: str, size: int) -> None:
    seen = {BASE_DN.lower()}
    for entry in objects(built(name, size)):
        assert parent_of(entry["dn"]).lower() in seen, entry["dn"]
        seen.add(entry["dn"].lower())


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("size", SIZES)
def test_cn_in_the_dn_is_the_display_name_escaped(name: str, size: int) -> None:
    for user in users(built(name, size)):
        display = user["attributes"]["displayName"]
        cn = cn_of(user["dn"])
        assert len(cn) <= 64
        assert cn == display if len(display) <= 64 else display.startswith(cn)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("size", SIZES)
def test_mail_attributes_follow_exchange_conventions(name: str, size: int) -> None:
    store_dns = {store["dn"] for _, store in stores(built(name, size))}
    for user in users(built(name, size)):
        attributes = user["attributes"]
        alias = attributes["mailNickname"]
        assert attributes["sAMAccountName"] == alias
        assert len(alias) <= 20 and not set(alias) & set('"/\\[]:;|=,+*?<>@')
        assert attributes["legacyExchangeDN"] == (
            f"/o=Corp/ou=First Administrative Group/cn=Recipients/cn={alias}"
        )
        assert attributes["homeMDB"] in store_dns
        server = re.search(r"CN=(EXCH0\d),CN=Servers", attributes["homeMDB"])
        assert server is not None
        assert attributes["msExchHomeServerName"] == (
            f"/o=Corp/ou=First Administrative Group/cn=Configuration/cn=Servers/cn={server[1]}"
        )


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("size", SIZES)
def test_connected_mailboxes_are_named_by_one_user_and_carry_his_legacy_dn(
    name: str, size: int
) -> None:
    world = built(name, size)
    owners = Counter(user["attributes"].get("msExchMailboxGuid") for user in users(world))
    by_mailbox = {user["attributes"].get("msExchMailboxGuid"): user for user in users(world)}
    where = mailbox_store(world)
    for box in mailboxes(world):
        if box["disconnected_at"] is None:
            assert owners[box["guid"]] == 1
            owner = by_mailbox[box["guid"]]["attributes"]
            assert box["legacy_dn"] == owner["legacyExchangeDN"]
            assert box["display_name"] == owner["displayName"]
            assert where[box["guid"]] == owner["homeMDB"]
        else:
            assert owners[box["guid"]] == 0


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_hostile_names_are_inside_and_outside_the_selection(name: str) -> None:
    world = built(name, 500)
    expected = world["scenario"]["expected"]
    affected = {case["user"] for case in expected.get("affected", [])}
    inside = set(expected.get("deleted_guids", [])) | affected
    names_in = [u["attributes"]["displayName"] for u in users(world) if u["guid"] in inside]
    names_out = [u["attributes"]["displayName"] for u in users(world) if u["guid"] not in inside]
    for names in (names_in, names_out):
        assert any("," in n and "'" in n for n in names)
        assert any('"' in n for n in names)
        assert any("*()\\" in n for n in names)
        assert any(set(n) & set("\u2018\u2019\u201a\u201b") for n in names)
        assert any("$(whoami)" in n for n in names)
        assert any("`" in n for n in names)
        assert any(n.startswith("#") for n in names)
        assert any(len(n) == 200 for n in names)
    assert len(names_in) > 100 and sum(n[0].isalpha() for n in names_in) > 0.9 * len(names_in)


@pytest.mark.parametrize(
    "value",
    ["O'Brien, Seán", 'Smith, "Smitty"', "Star *()\\", "#Hash+Plus;Semi<Angle>=Equals",
     " leading", "trailing ", " ", "\u2018Curly\u2019", "nul\0byte", "a\\ "],
)  # fmt: skip
def test_escaped_rdn_value_parses_back_to_the_value(value: str) -> None:
    dn = f"CN={escape_rdn_value(value)},{BASE_DN}"
    assert parent_of(dn) == BASE_DN
    assert cn_of(dn) == value


# -- kb842101 -----------------------------------------------------------------------------------


def check_kb842101(world: World) -> None:
    """Every invariant of the cancelled-migration world."""
    expected = world["scenario"]["expected"]
    assert world["scenario"]["parameters"] == {
        "ou": KB842101_OU, "created_after": KB842101_CREATED_AFTER,
        "created_before": KB842101_CREATED_BEFORE}  # fmt: skip
    entries = by_guid(world)
    deleted = set(expected["deleted_guids"])
    untouched = set(expected["untouched_guids"])
    assert deleted.isdisjoint(untouched)
    assert deleted | untouched == set(entries)

    scoped = {
        user["guid"] for user in users(world)
        if user["dn"].lower().endswith("," + KB842101_OU.lower())
        and in_window(user["when_created"])
    }  # fmt: skip
    selected = {guid for guid in deleted if entries[guid]["object_class"] == "user"}
    assert scoped == selected
    assert len(selected) == world["scenario"]["size"]

    children = [entries[guid] for guid in deleted - selected]
    assert len(children) == 1
    assert children[0]["object_class"] == "msExchActiveSyncDevices"
    assert parent_of(children[0]["dn"]) in {entries[guid]["dn"] for guid in selected}

    boxes = {box["guid"]: box for box in mailboxes(world)}
    named = {entries[g]["attributes"].get("msExchMailboxGuid") for g in selected} - {None}
    assert set(expected["purged_mailboxes"]) == named & set(boxes)
    with_items = {guid for guid in named & set(boxes) if boxes[guid]["items"]}
    assert set(expected["exported_mailboxes"]) == with_items
    assert set(expected["untouched_mailboxes"]) == set(boxes) - set(expected["purged_mailboxes"])
    assert all(box["disconnected_at"] is None for box in boxes.values())
    for guid in expected["untouched_mailboxes"]:
        assert 1 <= len(boxes[guid]["items"]) <= 25
    for guid in expected["exported_mailboxes"]:
        assert 1 <= len(boxes[guid]["items"]) <= 25
    assert lookalike_kinds(world) == {"before", "after", "sibling", "staff"}


def lookalike_kinds(world: World) -> set[str]:
    """Which kinds of look-alike (untouched user with mail) the world holds."""
    untouched = set(world["scenario"]["expected"]["untouched_guids"])
    kinds = set()
    for user in users(world):
        if user["guid"] not in untouched or "msExchMailboxGuid" not in user["attributes"]:
            continue
        parent, when = parent_of(user["dn"]), user["when_created"]
        if parent == KB842101_OU and when == "2026-11-01T09:59:00Z":
            kinds.add("before")
        elif parent == KB842101_OU and when == "2026-11-01T12:01:00Z":
            kinds.add("after")
        elif parent == KB842101_SIBLING_OU and in_window(when):
            kinds.add("sibling")
        elif parent == STAFF_OU and when.startswith("2025-"):
            kinds.add("staff")
    return kinds


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("version", ["2003", "2013"])
def test_kb842101_holds_every_invariant(size: int, version: str) -> None:
    check_kb842101(built("kb842101", size, version=version))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(1, 80), seed=st.integers(0, 2**32), version=st.sampled_from(VERSIONS))
def test_kb842101_holds_every_invariant_at_any_size_and_seed(
    size: int, seed: int, version: str
) -> None:
    check_kb842101(kb842101(size, seed, version=version))


def test_kb842101_at_size_one_has_a_selected_user_with_mail_a_child_and_every_lookalike() -> None:
    world = built("kb842101", 1)
    expected = world["scenario"]["expected"]
    assert len(expected["deleted_guids"]) == 2
    assert len(expected["exported_mailboxes"]) == 1
    assert lookalike_kinds(world) == {"before", "after", "sibling", "staff"}


def test_kb842101_mixes_initialized_empty_and_never_initialized_users() -> None:
    world = built("kb842101", 500)
    expected = world["scenario"]["expected"]
    with_mail = len(expected["exported_mailboxes"])
    empty = len(expected["purged_mailboxes"]) - with_mail
    never = 500 - len(expected["purged_mailboxes"])
    assert (with_mail, empty, never) == (200, 100, 200)
    assert all(count >= 1 for count in _states(built("kb842101", 3)))


def _states(world: World) -> tuple[int, int, int]:
    expected = world["scenario"]["expected"]
    mail, purged = len(expected["exported_mailboxes"]), len(expected["purged_mailboxes"])
    return mail, purged - mail, world["scenario"]["size"] - purged


@pytest.mark.parametrize(("version", "stamped"), [("2000", False), ("2003", False), ("2007", True),
                                                  ("SE", True)])  # fmt: skip
def test_kb842101_never_initialized_users_have_no_mailbox_and_a_guid_only_from_2007(
    version: str, stamped: bool
) -> None:
    world = built("kb842101", 7, version=version)
    expected = world["scenario"]["expected"]
    boxes = {box["guid"] for box in mailboxes(world)}
    entries = by_guid(world)
    never = [
        entries[guid] for guid in expected["deleted_guids"]
        if entries[guid]["object_class"] == "user"
        and entries[guid]["attributes"].get("msExchMailboxGuid") not in boxes
    ]  # fmt: skip
    assert len(never) == _states(world)[2] >= 1
    assert all(("msExchMailboxGuid" in user["attributes"]) is stamped for user in never)


def test_kb842101_only_the_window_edges_separate_selected_users_from_lookalikes() -> None:
    world = built("kb842101", 500)
    deleted = set(world["scenario"]["expected"]["deleted_guids"])
    in_ou = [user for user in users(world) if parent_of(user["dn"]) == KB842101_OU]
    selected_times = sorted(user["when_created"] for user in in_ou if user["guid"] in deleted)
    other_times = {user["when_created"] for user in in_ou if user["guid"] not in deleted}
    assert other_times == {"2026-11-01T09:59:00Z", "2026-11-01T12:01:00Z"}
    assert selected_times[0] > KB842101_CREATED_AFTER
    assert selected_times[-1] < KB842101_CREATED_BEFORE


# -- kb278447 -----------------------------------------------------------------------------------


def check_kb278447(world: World) -> None:
    """Every invariant of the failed-upgrade world."""
    scenario = world["scenario"]
    expected = scenario["expected"]
    assert scenario["parameters"] == {}
    entries = by_guid(world)
    boxes = {box["guid"]: box for box in mailboxes(world)}
    where = mailbox_store(world)
    disconnected_by_legacy_dn: dict[str, list[str]] = defaultdict(list)
    for box in boxes.values():
        if box["disconnected_at"] is not None:
            assert box["disconnected_at"] == KB278447_UPGRADED_AT
            disconnected_by_legacy_dn[box["legacy_dn"].lower()].append(box["guid"])

    assert len(expected["affected"]) == scenario["size"]
    for case in expected["affected"]:
        user = entries[case["user"]]["attributes"]
        original, blank = boxes[case["original"]], boxes[case["blank"]]
        assert case["original"] == case["user"]
        assert user["msExchMailboxGuid"] == case["blank"] != case["original"]
        assert original["disconnected_at"] is not None and blank["disconnected_at"] is None
        assert blank["legacy_dn"] == user["legacyExchangeDN"]
        # Some originals carry the Exchange 5.5 legacyExchangeDN (the user's X500 address).
        assert original["legacy_dn"] == user["legacyExchangeDN"] or (
            f"X500:{original['legacy_dn']}" in user["proxyAddresses"]
        )
        assert original["display_name"] == blank["display_name"] == user["displayName"]
        assert where[case["original"]] == where[case["blank"]] == user["homeMDB"]
        assert len(original["items"]) == case["old_items"]
        assert len(blank["items"]) == case["new_items"]
        assert 5 <= case["old_items"] <= 30 and 1 <= case["new_items"] <= 3
        assert disconnected_by_legacy_dn[original["legacy_dn"].lower()] == [case["original"]]

    assert len(expected["healthy_guids"]) == max(1, scenario["size"] // 2)
    for guid in expected["healthy_guids"]:
        user = entries[guid]["attributes"]
        assert user["msExchMailboxGuid"] == guid
        assert boxes[guid]["disconnected_at"] is None and boxes[guid]["items"]
        assert user["legacyExchangeDN"].lower() not in disconnected_by_legacy_dn

    [ambiguous] = expected["ambiguous"]
    assert expected["ambiguous_guids"] == [ambiguous["user"]]
    user = entries[ambiguous["user"]]["attributes"]
    assert user["msExchMailboxGuid"] == ambiguous["blank"]
    assert boxes[ambiguous["blank"]]["disconnected_at"] is None
    candidates = disconnected_by_legacy_dn[user["legacyExchangeDN"].lower()]
    assert sorted(candidates) == ambiguous["candidates"] and len(candidates) == 2
    assert ambiguous["user"] not in candidates and ambiguous["user"] not in boxes

    free_busy = boxes[expected["free_busy_mailbox"]]
    assert free_busy["display_name"] == "SCHEDULE+ FREE BUSY"
    assert re.fullmatch(
        r"/o=Corp/ou=[^/]+/cn=Recipients/cn=SCHEDULE\+ FREE BUSY", free_busy["legacy_dn"]
    )
    assert free_busy["disconnected_at"] is not None
    assert free_busy["guid"] not in entries
    owners = {
        case["user"] for case in expected["affected"]
    } | set(expected["healthy_guids"]) | {ambiguous["user"]}  # fmt: skip
    assert owners == {user["guid"] for user in users(world)}
    assert expected["services"] == {s["name"]: s["services"] for s in world["exchange"]["servers"]}


@pytest.mark.parametrize("size", SIZES)
def test_kb278447_holds_every_invariant(size: int) -> None:
    check_kb278447(built("kb278447", size))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(1, 80), seed=st.integers(0, 2**32), version=st.sampled_from(VERSIONS))
def test_kb278447_holds_every_invariant_at_any_size_and_seed(
    size: int, seed: int, version: str
) -> None:
    check_kb278447(kb278447(size, seed, version=version))


def test_kb278447_at_size_one_has_an_affected_a_healthy_and_an_ambiguous_user() -> None:
    expected = built("kb278447", 1)["scenario"]["expected"]
    assert len(expected["affected"]) == len(expected["healthy_guids"]) == 1
    assert len(expected["ambiguous_guids"]) == 1
    assert expected["free_busy_mailbox"]


def test_kb278447_legacy_dn_discovery_finds_the_affected_and_the_ambiguous_user_only() -> None:
    world = built("kb278447", 500)
    expected = world["scenario"]["expected"]
    disconnected = Counter(
        box["legacy_dn"].lower() for box in mailboxes(world) if box["disconnected_at"] is not None
    )
    found = {
        user["guid"]: disconnected[user["attributes"]["legacyExchangeDN"].lower()]
        for user in users(world) if disconnected[user["attributes"]["legacyExchangeDN"].lower()]
    }  # fmt: skip
    # Users whose original carries the 5.5 legacyExchangeDN are found by objectGUID instead.
    by_guid = {box["guid"] for box in mailboxes(world) if box["disconnected_at"] is not None}
    assert {guid for guid, count in found.items() if count == 1} | (
        {user["guid"] for user in users(world)} & by_guid
    ) == {case["user"] for case in expected["affected"]}
    assert [guid for guid, count in found.items() if count > 1] == expected["ambiguous_guids"]


# -- the loader accepts what the builders make --------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("version", ["2000", "2003", "2010", "SE"])
def test_world_loader_accepts_the_scenario(name: str, version: str) -> None:
    fakes = pytest.importorskip("remediate.fakes")
    loader = getattr(fakes, "world_from_json", None)
    if loader is None:
        pytest.skip("remediate.fakes has no world_from_json yet")
    loader(built(name, 7, version=version))
