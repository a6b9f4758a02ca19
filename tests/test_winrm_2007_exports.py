"""Exchange 2007 cannot export or import mail through remediate (no export requests; its
Export-Mailbox -PSTFolderPath needs a 32-bit machine with Outlook). The adapter refuses before any
WinRM call, and a plan rehearsed on a snapshot of such a server refuses the same way, naming the
server and what to do: plan and apply agree (kb278447 leaves those users out instead). A fake
2007 world that mirrors no real server still exports (the fakes' own scenarios rely on it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from uuid import UUID

import pytest
from kb_support import Doc, expected, load, parameters, scenario
from winrm_support import Site, serve, snapshot_world

from remediate import Engine, get_playbook
from remediate.engine.runner import EXIT_LEFT_OUT, EXIT_REFUSED
from remediate.errors import PermanentError, Refused
from remediate.fakes import world_from_json, world_to_json
from remediate.snapshot import snapshot
from remediate.testing import apply_confirmed

pytestmark = pytest.mark.winrm

REFUSAL = (
    r"EXCH01 runs Exchange 2007, which cannot export or import mail.*"
    r"-PSTFolderPath.*32-bit machine with Outlook.*admin workstation.*Exchange 2010 SP1 or later"
)
DOC = scenario("kb842101", 3, seed=3, version="2007")


@pytest.fixture
def site() -> Iterator[Site]:
    assert expected(DOC)["exported_mailboxes"], "the scenario must have mail to export"
    with serve(load(DOC)) as served:
        yield served


def test_the_adapter_says_why_and_the_snapshot_records_it(site: Site) -> None:
    exchange = site.exchange()
    refusal = exchange.mail_export_refusal("EXCH01")
    assert refusal is not None
    assert site.commands() == 0  # a capability of the version: no WinRM call
    document: Doc = snapshot(snapshot_world(site))
    (server,) = document["exchange"]["servers"]
    assert server["mail_export_refusal"] == refusal
    rebuilt = world_from_json(document)
    assert rebuilt.exchange.mail_export_refusal("EXCH01") == refusal
    (saved,) = world_to_json(rebuilt)["exchange"]["servers"]  # type: ignore[index]
    assert saved["mail_export_refusal"] == refusal
    with pytest.raises(PermanentError, match=REFUSAL):  # the rehearsal refuses as apply does
        rebuilt.exchange.export_mail("EXCH01", [UUID(expected(DOC)["exported_mailboxes"][0])])


def test_kb278447_leaves_out_each_user_whose_mail_cannot_be_exported(engine: Engine) -> None:
    """One user's mail that cannot be exported must not stop the others' repair, so kb278447
    leaves such users out (naming the server's refusal) instead of refusing the run; here every
    blank mailbox holds mail, so nothing is changed, and the exit code says users were left
    out."""
    doc = scenario("kb278447", 3, seed=3, version="2007")
    with serve(load(doc)) as site:
        playbook = get_playbook("kb278447")
        planned = engine.plan(playbook, snapshot_world(site), parameters(doc))
        assert (planned.changes, planned.exit_code) == ([], EXIT_LEFT_OUT)
        left_out = [f for f in planned.findings if f.kind == "left-out"]
        assert len(left_out) == len(expected(doc)["affected"])
        assert all(re.search(REFUSAL, f.message) for f in left_out)
        before = snapshot(site.world)
        applied = apply_confirmed(engine, playbook, snapshot_world(site), parameters(doc))
        assert (applied.changes, applied.exit_code) == ([], EXIT_LEFT_OUT)
        assert snapshot(site.world) == before


@pytest.mark.parametrize("name", ["kb842101"])
def test_the_plan_refuses_the_export_as_apply_will(name: str, engine: Engine) -> None:
    doc = DOC
    with serve(load(doc)) as site:
        playbook = get_playbook(name)
        planned = engine.plan(playbook, snapshot_world(site), parameters(doc))
        assert (planned.state, planned.exit_code) == ("refused", EXIT_REFUSED)
        assert re.search("export-mail.*would fail: " + REFUSAL, str(planned.error))

        before = snapshot(site.world)
        with pytest.raises(Refused, match="nothing was changed") as refused:
            apply_confirmed(
                engine, playbook, snapshot_world(site), parameters(doc)
            ).raise_for_stop()
        assert str(planned.error) in str(refused.value)
        # Nothing exported, purged, deleted, disabled or stopped.
        assert snapshot(site.world) == before
        boxes = [box.guid for box in site.world.exchange.mailboxes("EXCH01")]
        assert site.world.exchange.exports("EXCH01", boxes) == {}


def test_a_fake_2007_world_still_exports(engine: Engine) -> None:
    planned = engine.plan(get_playbook("kb842101"), load(DOC), parameters(DOC))
    assert planned.state == "pending"
    assert {change.step for change in planned.changes} >= {"export-mail", "purge-mailbox"}
