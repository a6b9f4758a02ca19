"""ExMerge (Exchange 2000/2003) reads the mailboxes to export or import from a text file, one
legacyExchangeDN per line, and its settings from an ini file: a value that is not one safe line
(CR, LF, NUL, the other line separators and controls, a leading or trailing blank) could make it
act on a mailbox the plan does not name. The plan refuses such a mailbox (WouldFail, naming it),
on the fakes and on a snapshot read through the WinRM adapter; the server's script refuses the
whole batch before it writes or runs anything; later versions export by GUID and are not
concerned."""

from __future__ import annotations

import re
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from hostile_values import HOSTILE
from kb_support import Doc, expected, load, parameters, scenario
from winrm_support import Site, serve, snapshot_world

from remediate import Engine, get_playbook
from remediate.adapters.winrm.scripts import library
from remediate.engine.runner import EXIT_REFUSED
from remediate.errors import PermanentError, Refused
from remediate.model import LINE_UNSAFE, ExchangeVersion, MailItem, line_unsafe
from remediate.snapshot import snapshot
from remediate.testing import apply_confirmed

pytestmark = pytest.mark.security

# Beyond the corpus: the separators .NET or ExMerge might split on that it lacks.
UNSAFE = sorted(
    {v for v in HOSTILE if line_unsafe(v)}
    | {
        "a\u2028b",
        "a\u2029b",
        "a\x85b",
        "a\x0bb",
        "a\x0cb",
        "a\x1eb",
        "a\x7fb",
        "/o=Org/cn=jdoe\r\n/o=Org/cn=ceo",
        "/o=Org/cn=ceo\x00/cn=jdoe",
    }
)
SAFE = [v for v in HOSTILE if v and not line_unsafe(v)]


def one_safe_line(value: str) -> bool:
    """An oracle apart from the pattern: one line for Python's splitlines (which knows every
    Unicode line boundary), no blank at either end, no control character."""
    return (
        value.splitlines() == ([value] if value else [])
        and value == value.strip()
        and not any(ord(c) < 32 or c == "\x7f" for c in value)
    )


def test_the_pattern_refuses_exactly_the_values_that_are_not_one_safe_line() -> None:
    assert len(UNSAFE) >= 25 and len(SAFE) >= 150
    for value in HOSTILE + UNSAFE:
        assert line_unsafe(value) is not one_safe_line(value), repr(value)


@pytest.mark.parametrize("version", ["2003"])
@pytest.mark.parametrize("operation", ["export", "import"])
def test_the_script_checks_every_line_of_the_batch_before_it_writes_or_runs_anything(
    version: str, operation: str
) -> None:
    text = library(ExchangeVersion(version))[operation].text
    assert f"$RemediateLineUnsafe = '{LINE_UNSAFE}'" in text  # the one pattern, as Python's
    body = text[text.index("function Invoke-RemediateOperation") :]
    first_write = min(
        body.index(call)
        for call in (
            "Move-RemediateEarlierExport",
            "New-RemediateWorkDirectory",
            "Invoke-RemediateExMerge",
        )
        if call in body
    )
    checks = [m.start() for m in re.finditer(r"Assert-RemediateExMerge(Line|Host)\b", body)]
    assert checks and max(checks) < first_write
    assert re.search(
        r"Assert-RemediateExMergeLine \(\[string\]\$\w+(\[\$guid\])?\.LegacyDN\)",
        body[:first_write],
    )


# -- through the loopback WS-Management endpoint (Exchange 2003)


@pytest.fixture
def site() -> Iterator[Site]:
    with serve(load(scenario("kb842101", 1, seed=3, version="2003"))) as served:
        yield served


def add_mailboxes(site: Site, legacy_dns: list[str]) -> list[UUID]:
    fake = site.world.exchange
    (server,) = fake.servers()
    store = fake.stores(server.name)[0]
    guids = []
    for index, legacy_dn in enumerate(legacy_dns):
        guids.append(uuid4())
        fake.add_mailbox(
            store.dn,
            guids[-1],
            legacy_dn,
            f"box {index}",
            items=[MailItem(f"item-{index}", "Inbox", "hello")],
        )
    return guids


@pytest.mark.winrm
def test_the_server_refuses_the_whole_batch_and_writes_nothing(site: Site) -> None:
    good, *hostile = add_mailboxes(site, ["/o=Org/ou=First/cn=Recipients/cn=good", *UNSAFE])
    exchange, fake = site.exchange(), site.world.exchange
    for guid in hostile:
        with pytest.raises(PermanentError, match=f"mailbox {guid} on EXCH01.*line break"):
            exchange.export_mail("EXCH01", [good, guid])  # the bad one last: all refused
    # ExMerge's prerequisites are asked once, then every batch is refused by the server itself
    assert [call.operation for call in site.hosts["EXCH01"].calls] == [
        "exmerge_prerequisites",
        *["export"] * len(hostile),
    ]
    assert site.share.exports == {} and fake.exports("EXCH01", [good, *hostile]) == {}

    ref = exchange.export_mail("EXCH01", [good])[good]
    items = {box.guid: box.item_count for box in fake.mailboxes("EXCH01", hostile)}
    for guid in hostile:
        with pytest.raises(PermanentError, match=f"mailbox {guid} on EXCH01.*line break"):
            exchange.import_mail("EXCH01", [(guid, ref)])
    assert site.share.imports == {}
    assert {box.guid: box.item_count for box in fake.mailboxes("EXCH01", hostile)} == items


@pytest.mark.winrm
def test_hostile_values_that_are_one_safe_line_still_export(site: Site) -> None:
    guids = add_mailboxes(site, SAFE)
    made = site.exchange().export_mail("EXCH01", guids)
    assert set(made) == set(guids)


# -- at plan time, naming the mailbox: nothing reaches the server


def with_hostile_legacy_dn(version: str, legacy_dn: str) -> tuple[Doc, UUID]:
    doc = scenario("kb842101", 3, seed=3, version=version)
    doomed = expected(doc)["exported_mailboxes"][0]
    for server in doc["exchange"]["servers"]:
        for store in server["stores"]:
            for box in store["mailboxes"]:
                if box["guid"] == doomed:
                    box["legacy_dn"] = legacy_dn
    return doc, UUID(doomed)


@pytest.mark.parametrize(
    "legacy_dn", ["/o=Org/cn=jdoe\n/o=Org/cn=ceo", "/o=Org/cn=jdoe\x00", "/o=Org/cn=jdoe "]
)
def test_the_plan_refuses_the_mailbox_on_the_fakes(engine: Engine, legacy_dn: str) -> None:
    doc, doomed = with_hostile_legacy_dn("2003", legacy_dn)
    planned = engine.plan(get_playbook("kb842101"), load(doc), parameters(doc))
    assert (planned.state, planned.exit_code) == ("refused", EXIT_REFUSED)
    assert re.search(
        f"export-mail.*would fail: mailbox {doomed} on EXCH01: its "
        "legacyExchangeDN .* line break.*plan again",
        str(planned.error),
    )


def test_a_version_that_exports_by_guid_is_not_concerned(engine: Engine) -> None:
    doc, _ = with_hostile_legacy_dn("2016", "/o=Org/cn=jdoe\n/o=Org/cn=ceo")
    planned = engine.plan(get_playbook("kb842101"), load(doc), parameters(doc))
    assert planned.state == "pending"


@pytest.mark.winrm
def test_the_plan_refuses_it_through_the_adapter_and_apply_changes_nothing(
    engine: Engine,
) -> None:
    doc, doomed = with_hostile_legacy_dn("2003", "/o=Org/cn=jdoe\r\n/o=Org/cn=ceo")
    with serve(load(doc)) as site:
        playbook = get_playbook("kb842101")
        planned = engine.plan(playbook, snapshot_world(site), parameters(doc))
        assert (planned.state, planned.exit_code) == ("refused", EXIT_REFUSED)
        assert f"would fail: mailbox {doomed} on EXCH01" in str(planned.error)
        before = snapshot(site.world)
        with pytest.raises(Refused, match="nothing was changed"):
            apply_confirmed(
                engine, playbook, snapshot_world(site), parameters(doc)
            ).raise_for_stop()
        assert snapshot(site.world) == before
        operations = {call.operation for call in site.hosts["EXCH01"].calls}
        assert not operations & {"export", "import", "purge", "disable", "reconnect"}
        assert site.share.exports == {}


@pytest.mark.winrm
def test_what_exmerge_lacks_on_the_server_is_the_plans_refusal(site: Site) -> None:
    """exmerge.exe missing from Exchsrvr\\bin, or an export directory on the system drive of
    the server being repaired: the server's own check, asked once, becomes the refusal the
    plan shows (and export_mail refuses with), before anything is exported."""
    problem = "ExMerge is not installed on EXCH01: copy exmerge.exe ... (KB174197)"
    site.hosts["EXCH01"].exmerge_problems = [problem]
    exchange = site.exchange()
    assert exchange.mail_export_refusal("EXCH01") == problem
    with pytest.raises(PermanentError, match="ExMerge is not installed"):
        exchange.export_mail("EXCH01", [])
    assert [call.operation for call in site.hosts["EXCH01"].calls] == ["exmerge_prerequisites"]
    assert site.hosts["EXCH01"].calls[0].parameters == {"directory": "C:\\remediate\\exports"}


def test_exmerge_runs_in_batch_mode_without_a_window_and_logs_where_the_ini_says() -> None:
    text = library(ExchangeVersion.E2003)["export"].text
    assert "& $exmerge '-B' '-F' $iniPath | Out-Null" in text and "'-D'" not in text
    assert "('LogFileName=' + $logPath)" in text
    prerequisites = library(ExchangeVersion.E2003)["exmerge_prerequisites"].text
    assert "exmerge.exe" in prerequisites and "$env:SystemDrive" in prerequisites
