"""Transport by server role: a split-role organisation is repaired, not refused. The plan stops
what actually delivers into the affected databases, server by server (Exchange 2007/2010: the
Hub Transport servers of the site; 2013 and later: MSExchangeDelivery on the Mailbox server;
2000/2003: MTA and SMTP on the server itself) and starts exactly that again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from kb_support import load, parameters, scenario
from winrm_support import WinRmWorld, serve

from remediate import Engine, get_playbook
from remediate.cli.main import main
from remediate.engine.runner import EXIT_DONE, EXIT_PENDING
from remediate.errors import PermanentError, Refused
from remediate.fakes import load_world
from remediate.model import ExchangeServer, ExchangeVersion, MailItem, ServiceState
from remediate.steps.services import delivering_services
from remediate.testing import apply_confirmed, change_keys

Doc = dict[str, Any]


def mailbox_only_2010(doc: Doc, version: str = "2010") -> Doc:
    """The mailbox servers become Mailbox-only (no transport service at all); a Hub Transport
    server of the same site and version, holding no database, delivers for them."""
    for server in doc["exchange"]["servers"]:
        server["roles"] = ["Mailbox"]
        server["services"] = {"MSExchangeIS": "running"}
    dc = doc["exchange"]["servers"][0]["dc"]
    doc["exchange"]["servers"].append(
        {
            "name": "HUB01",
            "version": version,
            "dc": dc,
            "roles": ["HubTransport"],
            "services": {"MSExchangeTransport": "running"},
            "stores": [],
        }
    )
    return doc


def mailbox_without_front_end_2013(doc: Doc) -> Doc:
    """Exchange 2013 Mailbox servers without the Client Access role: no Front End Transport;
    a separate Client Access server has it."""
    for server in doc["exchange"]["servers"]:
        server["roles"] = ["Mailbox"]
        server["services"] = dict.fromkeys(
            ("MSExchangeIS", "MSExchangeTransport", "MSExchangeDelivery", "MSExchangeSubmission"),
            "running",
        )
    dc = doc["exchange"]["servers"][0]["dc"]
    doc["exchange"]["servers"].append(
        {
            "name": "CAS01",
            "version": "2013",
            "dc": dc,
            "roles": ["ClientAccess"],
            "services": {"MSExchangeFrontEndTransport": "running"},
            "stores": [],
        }
    )
    return doc


WORLDS: dict[str, tuple[str, Callable[[Doc], Doc]]] = {
    "2007-mailbox-only": ("2007", lambda doc: mailbox_only_2010(doc, "2007")),
    "2010-mailbox-only": ("2010", mailbox_only_2010),
    "2013-mailbox-without-front-end": ("2013", mailbox_without_front_end_2013),
}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Doc]:
    capsys.readouterr()
    code = main([*argv, "--format", "json", "-q"])
    captured = capsys.readouterr()
    assert captured.out, f"exit {code}: {captured.err.strip()}"
    return code, json.loads(captured.out)


# kb278447 on Exchange 2007 is refused at plan (no mailbox export there; see REFUSAL_2007).
CASES = [
    (playbook, world)
    for playbook in ("kb842101", "kb278447")
    for world in sorted(WORLDS)
    if (playbook, world) != ("kb278447", "2007-mailbox-only")
]


@pytest.mark.parametrize(("playbook", "world"), CASES)
def test_a_split_role_organisation_plans_2_and_applies_0(
    playbook: str,
    world: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REMEDIATE_STATE_DIR", str(tmp_path / "state"))
    version, split = WORLDS[world]
    doc = split(scenario(playbook, 4, seed=5, version=version))
    path = tmp_path / "world.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    given = [arg for key, value in parameters(doc).items() for arg in ("-p", f"{key}={value}")]

    code, planned = run_json(capsys, "plan", playbook, "--world", str(path), *given)
    assert code == 2, planned["error"]
    out = tmp_path / "after.json"
    code, applied = run_json(
        capsys, "apply", playbook, "--world", str(path), *given, "--yes", "--save-world", str(out)
    )
    assert code == 0, applied["error"]
    assert [c["label"] for c in applied["changes"]] == [c["label"] for c in planned["changes"]]

    stopped = [c["label"] for c in planned["changes"] if c["step"] == "stop-service"]
    started = [c["label"] for c in planned["changes"] if c["step"] == "start-service"]
    if playbook == "kb278447":
        mailbox_servers = sorted(s["name"] for s in doc["exchange"]["servers"] if s["stores"])
        if version == "2013":
            want = [f"{name} service MSExchangeDelivery" for name in mailbox_servers]
        else:
            want = ["HUB01 service MSExchangeTransport"]
        assert sorted(stopped) == want and sorted(started) == want
    else:
        assert stopped == started == []
    after = json.loads(out.read_text())
    assert {s["name"]: s["services"] for s in after["exchange"]["servers"]} == {
        s["name"]: s["services"] for s in doc["exchange"]["servers"]
    }


def test_the_plan_refuses_only_when_no_hub_of_the_site_is_known() -> None:
    mailbox = ExchangeServer("MBX01", ExchangeVersion.E2010, "DC1", frozenset({"Mailbox"}), "S1")
    hubs = [
        ExchangeServer("HUB01", ExchangeVersion.E2010, "DC1", frozenset({"HubTransport"}), "S1"),
        ExchangeServer("HUB02", ExchangeVersion.E2010, "DC1", frozenset({"HubTransport"}), "S1"),
        ExchangeServer("HUB09", ExchangeVersion.E2010, "DC1", frozenset({"HubTransport"}), "S2"),
        ExchangeServer("HUB07", ExchangeVersion.E2007, "DC1", frozenset({"HubTransport"}), "S1"),
    ]
    assert delivering_services(mailbox, [mailbox, *hubs]) == [
        ("HUB01", "MSExchangeTransport"),
        ("HUB02", "MSExchangeTransport"),
    ]
    with pytest.raises(Refused, match=r"Hub Transport servers of site S1.*none of them"):
        delivering_services(mailbox, [mailbox, hubs[2], hubs[3]])
    legacy = ExchangeServer("EXCH03", ExchangeVersion.E2003, "DC1")
    assert delivering_services(legacy, [legacy]) == [
        ("EXCH03", "MSExchangeMTA"),
        ("EXCH03", "SMTPSVC"),
    ]
    later = ExchangeServer("EXCH16", ExchangeVersion.E2016, "DC1")
    assert delivering_services(later, [later]) == [("EXCH16", "MSExchangeDelivery")]


def test_the_fake_delivers_through_any_running_hub_of_the_site_and_holds_without_one(
    tmp_path: Path,
) -> None:
    doc = mailbox_only_2010(scenario("kb278447", 2, seed=5, version="2010"))
    doc["exchange"]["servers"].append(
        {
            "name": "HUB02",
            "version": "2010",
            "dc": doc["exchange"]["servers"][0]["dc"],
            "roles": ["HubTransport"],
            "services": {"MSExchangeTransport": "running"},
            "stores": [],
        }
    )
    path = tmp_path / "world.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    world = load_world(path)
    exchange = world.exchange
    user = next(o for o in doc["directory"]["objects"] if o["attributes"].get("msExchMailboxGuid"))
    recipient = user["attributes"]["legacyExchangeDN"]
    exchange.set_services("HUB01", ["MSExchangeTransport"], ServiceState.STOPPED)
    assert exchange.deliver("HUB02", recipient, MailItem("m1", "Inbox", "one")) == "delivered"
    exchange.set_services("HUB02", ["MSExchangeTransport"], ServiceState.STOPPED)
    assert exchange.deliver("EXCH01", recipient, MailItem("m2", "Inbox", "two")) == "queued"
    with pytest.raises(PermanentError, match="MSExchangeTransport"):
        exchange.service_states("EXCH01", ["MSExchangeTransport"])  # Mailbox-only: none
    exchange.set_services("HUB01", ["MSExchangeTransport"], ServiceState.RUNNING)
    [box] = exchange.mailboxes("EXCH01", [UUID(user["attributes"]["msExchMailboxGuid"])])
    assert {"m1", "m2"} <= set(box.item_ids or ())


@pytest.mark.winrm
@pytest.mark.parametrize("world", ["2010-mailbox-only", "2013-mailbox-without-front-end"])
def test_through_the_winrm_adapter_roles_come_from_get_exchangeserver(
    engine: Engine,
    world: str,
    tmp_path: Path,
) -> None:
    version, split = WORLDS[world]
    doc = split(scenario("kb278447", 3, seed=5, version=version))
    fake = load(doc)
    with serve(fake) as site:
        live = WinRmWorld(fake, site.exchange())
        roles = {s.name: s.roles for s in live.exchange.servers()}
        assert roles == {s["name"]: frozenset(s["roles"]) for s in doc["exchange"]["servers"]}
        plan = engine.plan(get_playbook("kb278447"), live, {})
        applied = apply_confirmed(engine, get_playbook("kb278447"), live, {})
    assert plan.exit_code == EXIT_PENDING, plan.error
    assert applied.exit_code == EXIT_DONE, applied.error
    assert change_keys(applied.changes) == change_keys(plan.changes)
    stopped = {c.label for c in plan.changes if c.step == "stop-service"}
    assert stopped == (
        {"HUB01 service MSExchangeTransport"}
        if version == "2010"
        else {"EXCH01 service MSExchangeDelivery"}
    )


@pytest.mark.parametrize("version", ["2003", "2016"])
def test_services_stop_service_force_stops_with_them_are_recorded_and_started_again(
    version: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A service that depends on one the plan stops (Windows' DependentServices) is stopped with
    it by Stop-Service -Force: the plan lists it, on its server, and starts it again."""
    monkeypatch.setenv("REMEDIATE_STATE_DIR", str(tmp_path / "state"))
    doc = scenario("kb278447", 3, seed=5, version=version)
    stopped = "SMTPSVC" if version == "2003" else "MSExchangeDelivery"
    for server in doc["exchange"]["servers"]:
        server["services"]["ExampleDependent"] = "running"  # a name of our own: no real one
        server["dependents"] = {stopped: ["ExampleDependent"]}
    path = tmp_path / "world.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    out = tmp_path / "after.json"

    code, planned = run_json(capsys, "plan", "kb278447", "--world", str(path))
    assert code == 2, planned["error"]
    stops = [c["label"] for c in planned["changes"] if c["step"] == "stop-service"]
    starts = [c["label"] for c in planned["changes"] if c["step"] == "start-service"]
    assert "EXCH01 service ExampleDependent" in stops
    assert stops.index("EXCH01 service ExampleDependent") < stops.index(f"EXCH01 service {stopped}")
    assert sorted(starts) == sorted(stops)
    code, applied = run_json(
        capsys, "apply", "kb278447", "--world", str(path), "--yes", "--save-world", str(out)
    )
    assert code == 0, applied["error"]
    after = json.loads(out.read_text())
    assert [s["services"] for s in after["exchange"]["servers"]] == [
        s["services"] for s in doc["exchange"]["servers"]
    ]
    assert after["exchange"]["servers"][0]["dependents"] == {stopped: ["ExampleDependent"]}
