"""Exchange 2010+ mailbox export and import requests as Microsoft documents them: the Mailbox
Import Export role is checked when the plan asks whether a server can export; each request is
named after its mailbox and found again by that name after an interruption; completed requests
are removed (the ten-names-per-mailbox limit); the wait has a deadline inside the runner's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from kb_support import load, scenario
from winrm_support import Site, WinRmWorld, serve

from remediate import Engine, get_playbook
from remediate.adapters.winrm import WinRmExchange
from remediate.adapters.winrm.scripts import library
from remediate.engine.runner import EXIT_PENDING
from remediate.errors import PermanentError, StepFailed
from remediate.model import ExchangeVersion
from remediate.testing import apply_confirmed

pytestmark = pytest.mark.winrm


@pytest.fixture
def site() -> Iterator[Site]:
    with serve(load(scenario("kb842101", 2, seed=3, version="2016"))) as served:
        yield served


def test_without_the_mailbox_import_export_role_the_plan_shows_what_to_assign(
    site: Site,
) -> None:
    site.hosts["EXCH01"].can_export = False
    exchange = site.exchange()
    refusal = exchange.mail_export_refusal("EXCH01")
    assert refusal is not None and "Mailbox Import Export" in refusal
    assert "New-ManagementRoleAssignment" in refusal
    with pytest.raises(PermanentError, match="Mailbox Import Export"):
        exchange.export_mail("EXCH01", [])
    assert [call.operation for call in site.hosts["EXCH01"].calls] == ["describe"]


def test_the_export_script_waits_within_the_runners_deadline(site: Site) -> None:
    config = replace(site.configs[0], deadline_s=900.0)
    exchange = WinRmExchange([config])
    guids = [box.guid for box in site.world.exchange.mailboxes("EXCH01")][:1]
    exchange.export_mail("EXCH01", guids)
    [call] = [c for c in site.hosts["EXCH01"].calls if c.operation == "export"]
    assert call.parameters["wait_s"] == "780"


@pytest.mark.parametrize("version", [ExchangeVersion.E2010, ExchangeVersion.E2016])
@pytest.mark.parametrize(("operation", "kind"), [("export", "Export"), ("import", "Import")])
def test_requests_are_named_per_mailbox_resumed_by_name_and_removed_when_done(
    version: ExchangeVersion,
    operation: str,
    kind: str,
) -> None:
    text = library(version)[operation].text
    assert f"New-Mailbox{kind}Request -Mailbox " in text and " -Name $name " in text
    assert f"-BatchName 'remediate-{operation}'" in text
    assert "[guid]::NewGuid()" not in text  # nothing random: an interrupted run finds its own
    assert "$earlier.ContainsKey($name)" in text  # found again by name, not queued twice
    assert f"Remove-Mailbox{kind}Request -Identity $Statistics.Identity" in text
    assert "timed out" in text  # the script's own deadline answers "transient"
    assert "-Mailbox $guid" not in text  # a store mailbox GUID is not a documented identity


def test_what_connect_mailbox_validateonly_reports_stops_the_strip_before_it_starts(
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """2007+: before anyone is stripped, the server holding each original mailbox is asked
    (Connect-Mailbox -ValidateOnly); a mailbox it says cannot be connected stops the step, and
    nobody is stripped."""
    fake = load(scenario("kb278447", 3, seed=5, version="2016"))
    playbook = get_playbook("kb278447")
    with serve(fake) as site:
        world = WinRmWorld(fake, site.exchange())
        assert engine.plan(playbook, world, {}).exit_code == EXIT_PENDING
        monkeypatch.setattr(
            fake.exchange,
            "reconnect_problems",
            lambda server, guids, stores=None: {
                guid: "The mailbox is in a database that is dismounted." for guid in guids
            },
        )
        with pytest.raises(StepFailed) as failed:
            apply_confirmed(engine, playbook, world, {}).raise_for_stop()
        calls = [c.operation for c in site.hosts["EXCH01"].calls]
    assert failed.value.step == "remove-exchange-attributes"
    assert (
        "(Connect-Mailbox -ValidateOnly): The mailbox is in a database that is dismounted. "
        "Nothing was changed" in str(failed.value)
    )
    assert "validate_reconnect" in calls and "disable" not in calls
