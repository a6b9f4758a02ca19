"""The replication wait covers the global catalogs each Exchange server reads AD through: a GC
of another domain (a read-only partial replica of this one) that lags after every DC of the
domain converged still holds the user pointing at the blank mailbox, and a cleanup agent run
then leaves the blank connected."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from uuid import UUID

import pytest
from kb_support import (
    Doc,
    assert_kb278447_end_state,
    expected,
    load,
    parameters,
    scenario,
    snapshot,
)
from winrm_support import serve, snapshot_world

from remediate import Engine, Safety, get_playbook
from remediate.engine import events as ev
from remediate.engine.journal import JournalRecord
from remediate.errors import WorldFormatError
from remediate.fakes import FakeWorld, world_from_json
from remediate.fakes.worldfile import world_to_json
from remediate.steps.replication import (
    DirectoryUse,
    Expectation,
    ReplicationTarget,
    replication_targets,
)

CATALOG = "GC9"
CATALOG_LAG_S = 4 * 3600.0  # well after DC2 (900 s) has converged
YES = Safety(confirm=lambda text: True)


def with_lagging_catalog(version: str) -> Doc:
    """kb278447's world, its Exchange server reading users through GC9, a global catalog of
    another domain of the forest that receives changes four hours late."""
    doc = scenario("kb278447", 7, version=version)
    doc["directory"]["dcs"].append(
        {"name": CATALOG, "replication_delay_s": CATALOG_LAG_S, "partial_replica": True}
    )
    for server in doc["exchange"]["servers"]:
        server["global_catalog"] = CATALOG
    return doc


class OwnersWhenCleanupStarts:
    """When the first cleanup-agent step starts, which blank mailboxes the global catalog still
    shows owned by a user (the store's cleanup agent would leave those connected)."""

    def __init__(self, world: FakeWorld, blanks: list[UUID]) -> None:
        self.world = world
        self.blanks = blanks
        self.still_owned: list[UUID] | None = None

    def __call__(self, record: JournalRecord) -> None:
        if (
            record["event"] == ev.STEP_STARTED
            and record["step"] == "run-cleanup-agent"
            and record.get("mode") == "apply"
            and self.still_owned is None
        ):
            view = self.world.directory.view(CATALOG)
            self.still_owned = [b for b in self.blanks if view.mailbox_owner(b) is not None]


@pytest.mark.parametrize("version", ["2003", "2016"])
def test_the_cleanup_agent_runs_only_once_the_servers_global_catalog_shows_the_strip(
    tmp_path_factory: pytest.TempPathFactory, version: str
) -> None:
    world = load(with_lagging_catalog(version))
    before = snapshot(world)
    blanks = [UUID(case["blank"]) for case in expected(before)["affected"]]
    watch = OwnersWhenCleanupStarts(world, blanks)
    engine = Engine(state_dir=tmp_path_factory.mktemp("state"), subscribers=(watch,))

    plan = engine.plan(get_playbook("kb278447"), world, {})
    result = engine.apply(get_playbook("kb278447"), world, {}, safety=YES)

    assert result.exit_code == 0, result.error
    assert watch.still_owned == []
    assert [(r.step, r.target, r.action) for r in plan.changes] == [
        (r.step, r.target, r.action) for r in result.changes
    ]
    waited = {record.label for record in result.changes if record.step == "wait-for-replication"}
    assert f"global catalog {CATALOG} (read by EXCH01)" in {str(label) for label in waited}
    assert_kb278447_end_state(before, world, result, expected(before))


def test_the_plan_names_per_exchange_server_the_directory_servers_it_waits_for(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Exchange 2003: the strip is written to the pinned DC1, so DC2 lags behind it too.
    world = load(with_lagging_catalog("2003"))
    engine = Engine(state_dir=tmp_path_factory.mktemp("state"))

    plan = engine.plan(get_playbook("kb278447"), world, {})

    labels = {str(record.label) for record in plan.changes if record.step == "wait-for-replication"}
    # EXCH01's store looks users up through GC9; DC2 is waited for as every DC of the domain.
    assert labels == {"domain controller DC2", f"global catalog {CATALOG} (read by EXCH01)"}


EXPECT = [Expectation(UUID(int=1), deleted=True)]


def keys(targets: list[ReplicationTarget]) -> dict[str, tuple[str, ...]]:
    return {target.key: target.readers for target in targets}


def test_a_catalog_that_is_a_dc_of_the_domain_is_waited_for_once_as_that_dc() -> None:
    uses = [
        DirectoryUse("EXCH01", ("dc1.corp.example",), ("DC2",)),
        DirectoryUse("EXCH02", ("DC2.corp.example",), ("gc7.other.example",)),
    ]

    found = replication_targets(["dc1.corp.example", "dc2.corp.example"], EXPECT, uses)

    assert keys(found) == {
        "dc:dc1.corp.example": (),
        "dc:dc2.corp.example": ("EXCH01",),
        "gc:gc7.other.example": ("EXCH02",),
    }


def test_a_dc_of_another_domain_holds_nothing_of_this_one_and_is_not_waited_for() -> None:
    uses = [
        DirectoryUse("EXCH01", ("dc5.other.example",), ("gc5.other.example",)),
        DirectoryUse("EXCH02", ("dc6.other.example",)),
    ]

    found = replication_targets(["dc1.corp.example"], EXPECT, uses)

    assert keys(found) == {"dc:dc1.corp.example": (), "gc:gc5.other.example": ("EXCH01",)}


def test_a_server_that_reports_no_global_catalog_looks_users_up_through_its_dc() -> None:
    found = replication_targets(["DC1", "DC2"], EXPECT, [DirectoryUse("EXCH01", ("DC2",))])

    assert keys(found) == {"dc:DC1": (), "dc:DC2": ("EXCH01",)}


def test_two_full_names_with_one_first_label_are_two_hosts() -> None:
    uses = [DirectoryUse("EXCH01", (), ("dc1.other.example",))]

    found = replication_targets(["dc1.corp.example"], EXPECT, uses)

    assert set(keys(found)) == {"dc:dc1.corp.example", "gc:dc1.other.example"}


def test_nothing_to_wait_for_without_expectations() -> None:
    assert replication_targets(["DC1"], [], [DirectoryUse("EXCH01", (), ("GC9",))]) == []


def test_a_partial_replica_is_no_dc_of_the_domain_and_takes_no_writes() -> None:
    world = load(with_lagging_catalog("2016"))
    directory = world.directory
    user = next(iter(directory.view("DC1").entries()))

    assert CATALOG not in directory.domain_controllers()
    assert directory.replication_delays()[CATALOG] == CATALOG_LAG_S
    assert directory.read_catalog([user.guid], CATALOG) == {user.guid: user}
    with pytest.raises(Exception, match="read-only partial replica"):
        directory.write(CATALOG, user.guid, {"description": "x"}, operation="test")


def test_a_saved_world_keeps_its_global_catalogs() -> None:
    before = with_lagging_catalog("2016")

    again = snapshot(world_from_json(world_to_json(load(before))))

    assert {
        "name": CATALOG,
        "replication_delay_s": CATALOG_LAG_S,
        "partial_replica": True,
    } in again["directory"]["dcs"]
    assert {server["global_catalog"] for server in again["exchange"]["servers"]} == {CATALOG}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda doc: doc["exchange"]["servers"][0].update(global_catalog="GC404"),
            "'GC404' is not a DC of directory.dcs",
        ),
        (
            lambda doc: doc["exchange"]["servers"][0].update(dc=CATALOG),
            "holds a read-only partial replica",
        ),
    ],
)
def test_a_world_file_naming_a_catalog_wrongly_is_a_one_line_error(
    change: object, message: str
) -> None:
    doc = with_lagging_catalog("2016")
    assert callable(change)
    change(doc)

    with pytest.raises(WorldFormatError, match=message) as raised:
        world_from_json(doc)
    assert "\n" not in str(raised.value)


@pytest.mark.winrm
@pytest.mark.parametrize("version", ["2003", "2016"])
def test_each_server_reports_the_directory_servers_it_uses_over_winrm_and_the_run_waits_for_them(
    tmp_path_factory: pytest.TempPathFactory, version: str
) -> None:
    """Exchange_DSAccessDC (2003) and Get-ExchangeServer -Status (2016) through the loopback
    endpoint; an inventory's run (rehearsed on a snapshot of the servers) waits for the GC."""
    world = load(with_lagging_catalog(version))
    blanks = [UUID(case["blank"]) for case in expected(snapshot(world))["affected"]]
    watch = OwnersWhenCleanupStarts(world, blanks)
    with serve(world) as site:
        (server,) = site.exchange().servers()
        assert (server.domain_controllers, server.global_catalogs) == (("DC2",), (CATALOG,))

        engine = Engine(state_dir=tmp_path_factory.mktemp("state"), subscribers=(watch,))
        plan = engine.plan(get_playbook("kb278447"), snapshot_world(site), {})
        result = engine.apply(get_playbook("kb278447"), snapshot_world(site), {}, safety=YES)

    assert result.exit_code == 0, result.error
    assert watch.still_owned == []
    # The snapshot the plan is rehearsed on holds GC9 with its lag: the plan shows the wait.
    assert f"gc:{CATALOG}" in {r.target for r in plan.changes if r.step == "wait-for-replication"}


def wait_seconds(lagging_dcs: int, parallel: int, latency_s: float) -> float:
    """Virtual seconds kb842101's replication wait takes with this many DCs lagging 300 s
    behind DC1 and ``latency_s`` per directory call."""
    doc = scenario("kb842101", 20, version="2010")
    doc["directory"]["dcs"] = [{"name": "DC1", "replication_delay_s": 0}] + [
        {"name": f"DC{n}", "replication_delay_s": 300} for n in range(2, lagging_dcs + 2)
    ]
    world = load(doc)
    world.set_latency(directory_s=latency_s)
    moments: dict[str, datetime] = {}

    def note(record: JournalRecord) -> None:
        if record.get("mode") == "apply" and record.get("step") == "wait-for-replication":
            moments[str(record["event"])] = world.clock.now()

    with tempfile.TemporaryDirectory() as state:
        engine = Engine(state_dir=Path(state), parallel=parallel, subscribers=(note,))
        result = engine.apply(get_playbook("kb842101"), world, parameters(doc), safety=YES)
    assert result.exit_code == 0, result.error
    return (moments[ev.STEP_COMPLETED] - moments[ev.STEP_STARTED]).total_seconds()


def test_the_wait_polls_every_dc_at_once_even_one_exchange_server_at_a_time() -> None:
    """--parallel 1 is about Exchange servers: sixteen lagging DCs cost what one does."""
    assert wait_seconds(16, parallel=1, latency_s=10) == wait_seconds(1, parallel=1, latency_s=10)
