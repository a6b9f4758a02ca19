"""Exchange 2007 has Update-Recipient only from SP1 ("Applies to: Exchange Server 2007 SP1,
SP2, SP3", bb738148): on a 2007 server without a service pack the run asks the operator to apply
the e-mail address policy from the console (bb201677) instead of running a cmdlet the server
does not have."""

from __future__ import annotations

from dataclasses import replace

import pytest
from kb_support import load, scenario
from winrm_support import WinRmWorld, serve

from remediate import Engine, get_playbook
from remediate.engine.runner import EXIT_PENDING
from remediate.fakes import FakeWorld
from remediate.fakes.packed import NO_ITEMS
from remediate.testing import apply_confirmed

pytestmark = pytest.mark.winrm


def with_empty_blanks(world: FakeWorld) -> FakeWorld:
    """No mail reached the blank mailboxes: nothing to export (which 2007 cannot do here)."""
    connected = {box.guid for box in world.exchange.mailboxes("EXCH01") if box.owner}
    for server in world.exchange.records():
        for store in server.stores.values():
            for guid in connected & set(store.mailboxes):
                store.mailboxes[guid] = replace(store.mailboxes[guid], items=NO_ITEMS)
    return world


@pytest.mark.parametrize(
    ("build", "asks_operator"),
    [
        ("Version 8.0 (Build 685.24)", True),  # Exchange 2007 RTM
        ("Version 8.1 (Build 240.6)", False),  # SP1
        ("Version 8.3 (Build 83.6)", False),  # SP3
    ],
)
def test_without_sp1_the_policy_is_applied_by_the_operator(
    engine: Engine,
    build: str,
    asks_operator: bool,
) -> None:
    fake = with_empty_blanks(load(scenario("kb278447", 3, seed=2, version="2007")))
    playbook = get_playbook("kb278447")
    with serve(fake) as site:
        site.hosts["EXCH01"].admin_display_version = build
        world = WinRmWorld(fake, site.exchange())
        assert engine.plan(playbook, world, {}).exit_code == EXIT_PENDING
        applied = apply_confirmed(engine, playbook, world, {})
        sent = [call.operation for call in site.hosts["EXCH01"].calls]
    assert "reconnect" in sent
    asked = [text for text in applied.manual_actions if "E-Mail Address Policies" in text]
    if asks_operator:
        assert "update_recipients" not in sent and asked
        assert "without a service pack (Version 8.0 (Build 685.24))" in asked[0]
    else:
        assert "update_recipients" in sent and not asked
