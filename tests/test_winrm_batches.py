"""One WinRM command per server per port call, whatever the number of targets: a 500-target batch
of every operation costs exactly one command on the server (split only past BATCH_SIZE)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest
from winrm_support import Site, serve

from remediate.adapters.winrm import exchange as winrm_exchange
from remediate.fakes import world_from_json
from remediate.model import ExchangeVersion, ServiceState
from remediate.ports import ManualActionRequired

pytestmark = pytest.mark.winrm

TARGETS = 500
STORE = (
    "CN=Store,CN=SG,CN=InformationStore,CN=EXCH01,CN=Servers,CN=First Administrative Group,"
    "CN=Administrative Groups,CN=Corp,CN=Microsoft Exchange,CN=Services,CN=Configuration,"
    "DC=corp,DC=example"
)


def user_guid(n: int) -> UUID:
    return UUID(int=n + 1)


def connected(n: int) -> UUID:
    return UUID(int=2**64 + n)


def disconnected(n: int) -> UUID:
    return UUID(int=2**65 + n)


def batch_world(version: str) -> dict[str, Any]:
    """``TARGETS`` users each with a connected mailbox of one item, and as many disconnected
    mailboxes with one item each."""
    objects, boxes = [], []
    for n in range(TARGETS):
        sam = f"user{n}"
        legacy = f"/o=Corp/ou=First Administrative Group/cn=Recipients/cn={sam}"
        objects.append({
            "dn": f"CN=User {n},OU=Users,DC=corp,DC=example", "object_class": "user",
            "guid": str(user_guid(n)), "when_created": "2026-10-01T00:00:00Z", "protected": False,
            "attributes": {"sAMAccountName": sam, "displayName": f"User {n}", "mailNickname": sam,
                           "legacyExchangeDN": legacy, "homeMDB": STORE,
                           "msExchMailboxGuid": str(connected(n))},
        })  # fmt: skip
        for guid, name, when in (
            (connected(n), legacy, None),
            (disconnected(n), legacy + "-old", "2026-10-02T00:00:00Z"),
        ):
            boxes.append(
                {
                    "guid": str(guid),
                    "legacy_dn": name,
                    "display_name": f"User {n}",
                    "disconnected_at": when,
                    "items": [{"id": f"m-{guid}", "folder": "Inbox", "subject": "hi"}],
                }
            )
    services = dict.fromkeys(
        ("MSExchangeIS", *ExchangeVersion(version).transport_services), "running"
    )
    server = {
        "name": "EXCH01",
        "version": version,
        "dc": "DC1",
        "services": services,
        "stores": [{"name": "Store", "storage_group": "SG", "dn": STORE, "mailboxes": boxes}],
    }
    return {
        "format": "remediate.world/1",
        "directory": {
            "domain": "corp.example",
            "base_dn": "DC=corp,DC=example",
            "dcs": [{"name": "DC1", "replication_delay_s": 0}],
            "objects": objects,
        },
        "exchange": {"servers": [server]},
    }


@pytest.fixture(params=["2003", "2016"])
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    with serve(world_from_json(batch_world(request.param))) as served:
        yield served


def commands_for(site: Site, action: Callable[[], object]) -> int:
    before = site.commands()
    with contextlib.suppress(ManualActionRequired):
        action()
    return site.commands() - before


def test_every_step_sends_one_command_per_server_for_500_targets(site: Site) -> None:
    exchange = site.exchange()
    exchange.servers()  # what the server is (its DC, its stores): once per run
    exchange.mail_export_refusal("EXCH01")  # and whether it can export (2003: ExMerge): once
    version = site.configs[0].version
    users = [user_guid(n) for n in range(TARGETS)]
    originals = [connected(n) for n in range(TARGETS)]
    orphans = [disconnected(n) for n in range(TARGETS)]
    exported: dict[UUID, Any] = {}

    steps: dict[str, Callable[[], object]] = {
        "mailboxes": lambda: exchange.mailboxes("EXCH01", originals + orphans),
        "service_states": lambda: exchange.service_states("EXCH01", version.transport_services),
        "set_services": lambda: exchange.set_services(
            "EXCH01", version.transport_services, ServiceState.STOPPED
        ),
        "export_mail": lambda: exported.update(exchange.export_mail("EXCH01", originals)),
        "exports": lambda: exchange.exports("EXCH01", originals),
        "disable_mailboxes": lambda: exchange.disable_mailboxes("EXCH01", users),
        "reconnect_mailboxes": lambda: exchange.reconnect_mailboxes(
            "EXCH01", list(zip(orphans, users, strict=True))
        ),
        "import_mail": lambda: exchange.import_mail(
            "EXCH01",
            [
                (orphan, exported[original])
                for orphan, original in zip(orphans, originals, strict=True)
            ],
        ),
        "run_cleanup_agent": lambda: exchange.run_cleanup_agent("EXCH01", [STORE]),
    }
    calls = {name: commands_for(site, step) for name, step in steps.items()}
    if version.cleanup_agent_is_manual:  # the operator runs it; the world does it here
        site.world.exchange.process_next()
    calls["purge_mailboxes"] = commands_for(
        site, lambda: exchange.purge_mailboxes("EXCH01", originals)
    )

    expected = dict.fromkeys(calls, 1)
    if version is ExchangeVersion.E2003:
        expected["run_cleanup_agent"] = 0  # a manual step: ManualActionRequired, no command
    assert calls == expected
    boxes = {box.guid: box for box in site.world.exchange.mailboxes("EXCH01")}
    assert set(boxes) == set(orphans)
    assert all(
        box.item_ids is not None and len(box.item_ids) == 2 and box.owner for box in boxes.values()
    )


def test_past_the_batch_size_a_step_is_split(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(winrm_exchange, "BATCH_SIZE", 200)
    exchange = site.exchange()
    exchange.servers()
    exchange.mail_export_refusal("EXCH01")
    guids = [connected(n) for n in range(TARGETS)]
    assert commands_for(site, lambda: exchange.mailboxes("EXCH01", guids)) == 3
    assert commands_for(site, lambda: exchange.export_mail("EXCH01", guids)) == 3
