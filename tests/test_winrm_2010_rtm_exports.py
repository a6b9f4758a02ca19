"""Exchange 2010 before SP1 (14.0) has no New-MailboxExportRequest/New-MailboxImportRequest. The
describe script reports the server's AdminDisplayVersion; from it the adapter refuses mail
export and import up front, so a plan rehearsed on a snapshot of such a server refuses (naming
the server, its build and what to do) instead of failing at apply; SP1 and later export."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import pytest
from kb_support import Doc, load, parameters, scenario
from winrm_support import Site, serve, snapshot_world

from remediate import Engine, get_playbook
from remediate.adapters.winrm.scripts.cmdlets import lacks_mailbox_requests
from remediate.engine.runner import EXIT_LEFT_OUT, EXIT_REFUSED
from remediate.errors import PermanentError, Refused
from remediate.fakes import world_from_json
from remediate.snapshot import snapshot
from remediate.testing import apply_confirmed

pytestmark = pytest.mark.winrm

RTM = "Version 14.0 (Build 639.21)"
REFUSAL = (
    r"EXCH01 runs Exchange 2010 without a service pack \(Version 14\.0 \(Build 639\.21\)\)"
    r".*no New-MailboxExportRequest.*Install Exchange 2010 SP1 or later.*plan again"
)


@pytest.mark.parametrize(
    ("build", "lacks"),
    [
        (RTM, True),
        ("Version 14.0 (Build 694.0)", True),
        ("Version 14.1 (Build 218.15)", False),  # SP1
        ("Version 14.3 (Build 123.4)", False),
        ("Version 15.1 (Build 2507.6)", False),
        ("", False),  # unreadable: not known, so not refused here (apply says what failed)
        ("14.0.639.21", False),
    ],
)
def test_a_build_before_sp1_lacks_mailbox_requests(build: str, lacks: bool) -> None:
    assert lacks_mailbox_requests(build) is lacks


@contextmanager
def served(name: str, build: str) -> Iterator[Site]:
    with serve(load(scenario(name, 3, seed=3, version="2010"))) as site:
        site.hosts["EXCH01"].admin_display_version = build
        yield site


@pytest.fixture
def rtm() -> Iterator[Site]:
    with served("kb842101", RTM) as site:
        yield site


def test_the_adapter_refuses_before_the_export_script_runs(rtm: Site) -> None:
    exchange = rtm.exchange()
    assert re.search(REFUSAL, exchange.mail_export_refusal("EXCH01") or "")
    for call in (
        lambda: exchange.export_mail("EXCH01", [UUID(int=1)]),
        lambda: exchange.import_mail("EXCH01", []),
    ):
        with pytest.raises(PermanentError, match=REFUSAL):
            call()
    assert [call.operation for call in rtm.hosts["EXCH01"].calls] == ["describe"]


def test_sp1_and_later_export() -> None:
    with served("kb842101", "Version 14.1 (Build 218.15)") as site:
        guids = [box.guid for box in site.world.exchange.mailboxes("EXCH01") if box.item_count]
        assert guids and site.exchange().mail_export_refusal("EXCH01") is None
        assert set(site.exchange().export_mail("EXCH01", guids)) == set(guids)


def test_the_snapshot_records_it_and_a_plan_on_the_fake_refuses(rtm: Site, engine: Engine) -> None:
    document: Doc = snapshot(snapshot_world(rtm))
    (server,) = document["exchange"]["servers"]
    assert re.search(REFUSAL, server["mail_export_refusal"])
    offline = world_from_json(document)  # the world file an operator plans on, offline
    doc = scenario("kb842101", 3, seed=3, version="2010")
    planned = engine.plan(get_playbook("kb842101"), offline, parameters(doc))
    assert (planned.state, planned.exit_code) == ("refused", EXIT_REFUSED)
    assert re.search("export-mail.*would fail: " + REFUSAL, str(planned.error))


@pytest.mark.parametrize("name", ["kb842101", "kb278447"])
def test_the_plan_refuses_as_apply_would_and_apply_changes_nothing(
    name: str, engine: Engine
) -> None:
    doc = scenario(name, 3, seed=3, version="2010")
    with served(name, RTM) as site:
        playbook = get_playbook(name)
        planned = engine.plan(playbook, snapshot_world(site), parameters(doc))
        before = snapshot(site.world)
        if name == "kb278447":  # each user whose mail cannot move is left out, not the run
            assert (planned.changes, planned.exit_code) == ([], EXIT_LEFT_OUT)
            left_out = [f.message for f in planned.findings if f.kind == "left-out"]
            assert len(left_out) == 3 and all(re.search(REFUSAL, m) for m in left_out)
            applied = apply_confirmed(engine, playbook, snapshot_world(site), parameters(doc))
            assert (applied.changes, applied.exit_code) == ([], EXIT_LEFT_OUT)
        else:
            assert (planned.state, planned.exit_code) == ("refused", EXIT_REFUSED)
            assert re.search("-mail.*would fail: " + REFUSAL, str(planned.error))
            with pytest.raises(Refused, match="nothing was changed"):
                apply_confirmed(
                    engine, playbook, snapshot_world(site), parameters(doc)
                ).raise_for_stop()
        assert snapshot(site.world) == before
        operations = {call.operation for call in site.hosts["EXCH01"].calls}
        assert not operations & {
            "export",
            "import",
            "purge",
            "disable",
            "reconnect",
            "set_services",
            "clean_database",
        }
