"""Export and import verification through the WinRM adapter: a store reports counts, not item ids,
so each export carries what the export tool reported (ExMerge's summary on 2000/2003, the export
request's statistics on 2010+), recorded beside the PST; a purge is refused unless that evidence
shows a complete export of the mailbox as it is now. A saved plan's fingerprint of a real mailbox
is its count and size."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest
from kb_support import expected, load, parameters, scenario
from winrm_support import Site, WinRmWorld, serve

from remediate import Engine, get_playbook
from remediate.engine.fingerprint import Scope, drifts, fingerprints, mailbox_key
from remediate.errors import PermanentError
from remediate.model import MailboxInfo, MailItem
from remediate.steps.coverage import export_gap
from remediate.testing import apply_confirmed

pytestmark = pytest.mark.winrm

TOOLS = {"2003": "ExMerge", "2010": "New-MailboxExportRequest", "2016": "New-MailboxExportRequest"}


@pytest.fixture(params=sorted(TOOLS))
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    with serve(load(scenario("kb842101", 3, seed=3, version=request.param))) as served:
        yield served


def with_items(site: Site) -> tuple[str, list[MailboxInfo]]:
    """The server and its connected mailboxes that hold mail (as the fake knows them)."""
    ((name, _),) = site.endpoints.items()
    boxes = [
        box
        for box in site.world.exchange.mailboxes(name)
        if box.item_count and not box.disconnected
    ]
    assert boxes
    return name, boxes


def test_a_store_reports_counts_and_sizes_not_item_ids(site: Site) -> None:
    name, boxes = with_items(site)
    read = {box.guid: box for box in site.exchange().mailboxes(name, [b.guid for b in boxes])}
    for box in boxes:
        assert read[box.guid].item_ids is None
        assert read[box.guid].item_count == box.item_count
        assert read[box.guid].size_bytes


def test_an_export_carries_the_tools_evidence_and_covers_the_mailbox(site: Site) -> None:
    name, boxes = with_items(site)
    exchange = site.exchange()
    guids = [box.guid for box in boxes]
    assert exchange.exports(name, guids) == {}
    made = exchange.export_mail(name, guids)
    assert exchange.exports(name, guids) == made
    read = {box.guid: box for box in exchange.mailboxes(name, guids)}
    version = site.configs[0].version.value
    for box in boxes:
        evidence = made[box.guid].evidence
        assert made[box.guid].item_ids is None and evidence is not None
        assert evidence.tool == TOOLS[version] and evidence.succeeded
        assert evidence.source_items == box.item_count
        assert evidence.exported_items == (None if version == "2003" else box.item_count)
        assert export_gap(read[box.guid], made[box.guid]) is None


def test_new_mail_or_a_rewritten_file_after_the_export_is_a_gap(site: Site) -> None:
    name, boxes = with_items(site)
    exchange = site.exchange()
    first, second = boxes[0], boxes[-1]
    exchange.export_mail(name, [first.guid, second.guid])
    fake = site.world.exchange
    assert fake.deliver(name, first.legacy_dn, MailItem("late-1", "Inbox", "late")) == "delivered"
    fake.sink.write(name, [(second.guid, [MailItem("other", "Inbox", "not the export")])])
    read = {box.guid: box for box in exchange.mailboxes(name, [first.guid, second.guid])}
    exports = exchange.exports(name, [first.guid, second.guid])
    late = export_gap(read[first.guid], exports[first.guid])
    assert late and f"holds {first.item_count + 1} items, {first.item_count} when" in late
    rewritten = export_gap(read[second.guid], exports[second.guid])
    assert rewritten and "the export file changed since" in rewritten


def test_a_failed_export_is_refused_and_leaves_evidence_that_blocks_a_purge(site: Site) -> None:
    name, boxes = with_items(site)
    exchange = site.exchange()
    box = boxes[0]
    site.share.bad_items[box.guid] = 2
    with pytest.raises(PermanentError, match=f"{box.guid} on {name}"):
        exchange.export_mail(name, [box.guid])
    [read] = exchange.mailboxes(name, [box.guid])
    gap = export_gap(read, exchange.exports(name, [box.guid])[box.guid])
    assert gap and "2 bad items" in gap


def test_an_import_is_recorded_as_done_for_its_target_only(site: Site) -> None:
    name, boxes = with_items(site)
    exchange = site.exchange()
    source, target = boxes[0], boxes[-1]
    ref = exchange.export_mail(name, [source.guid])[source.guid]
    assert ref.imported_into == ()
    exchange.import_mail(name, [(target.guid, ref)])
    assert exchange.exports(name, [source.guid])[source.guid].imported_into == (target.guid,)
    exchange.export_mail(name, [source.guid])  # a new export: earlier imports were of the old one
    assert exchange.exports(name, [source.guid])[source.guid].imported_into == ()


def test_a_record_that_cannot_be_read_is_refused_with_what_to_do(site: Site) -> None:
    name, boxes = with_items(site)
    exchange = site.exchange()
    box = boxes[0]
    exchange.export_mail(name, [box.guid])
    site.share.exports[box.guid] = {"format": "something else"}
    with pytest.raises(PermanentError, match=r"unreadable.*export the mailbox again"):
        exchange.exports(name, [box.guid])


def test_an_unreachable_export_share_names_the_double_hop(site: Site) -> None:
    name, boxes = with_items(site)
    site.share.unreachable = True
    with pytest.raises(PermanentError, match=r'cannot be reached from .*transport = "credssp"'):
        site.exchange().exports(name, [boxes[0].guid])


def test_exchange_2007_has_no_export_request_and_says_what_to_do() -> None:
    with serve(load(scenario("kb842101", 1, seed=3, version="2007"))) as site:
        ((name, endpoint),) = site.endpoints.items()
        with pytest.raises(PermanentError, match="Export-Mailbox -PSTFolderPath"):
            site.exchange().export_mail(name, [UUID(int=1)])
        assert endpoint.calls() == 0


@pytest.mark.parametrize("version", ["2003", "2016"])
def test_the_playbook_stops_before_any_purge_when_an_export_fails(
    engine: Engine, version: str
) -> None:
    doc = scenario("kb842101", 3, seed=3, version=version)
    fake = load(doc)
    doomed = UUID(expected(doc)["exported_mailboxes"][0])
    with serve(fake) as site:
        ((name, _),) = site.endpoints.items()
        site.share.bad_items[doomed] = 1
        world = WinRmWorld(site.world, site.exchange())
        before = {box.guid for box in fake.exchange.mailboxes(name)}
        with pytest.raises(PermanentError, match=f"{doomed} on {name}"):
            apply_confirmed(
                engine, get_playbook("kb842101"), world, parameters(doc)
            ).raise_for_stop()
        assert {box.guid for box in fake.exchange.mailboxes(name)} == before  # none purged
        users = [UUID(guid) for guid in expected(doc)["deleted_guids"]]
        assert len(fake.directory.read(users, fake.directory.writable_dc())) == len(users)


def test_a_real_mailboxs_fingerprint_is_its_count_and_size_and_shows_new_mail(
    site: Site,
) -> None:
    name, boxes = with_items(site)
    world = WinRmWorld(site.world, site.exchange())
    scope = Scope(mailboxes=tuple((name, box.guid) for box in boxes))
    planned = fingerprints(world, scope)
    key = mailbox_key(name, boxes[0].guid)
    assert planned[key]["items"] == boxes[0].item_count and planned[key]["size_bytes"]
    assert "item_ids_sha256" not in planned[key]
    mail = MailItem("late-2", "Inbox", "arrived after the plan")
    assert site.world.exchange.deliver(name, boxes[0].legacy_dn, mail) == "delivered"
    drifted = {(d.target, d.attribute) for d in drifts(planned, fingerprints(world, scope))}
    assert drifted == {(key, "items"), (key, "size_bytes")}
