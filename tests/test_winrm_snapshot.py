"""The Exchange part of a world file, read through WinRM, describes the servers as they are: a
world rebuilt from it (with the same directory) holds the same servers, stores, mailboxes,
marks and item counts (a store counts items but cannot list their ids: the snapshot names as many
stand-ins after their mailbox)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kb_support import load, scenario, snapshot
from winrm_support import serve

from remediate.fakes import world_from_json
from remediate.fakes.scenarios import kb278447
from remediate.snapshot import exchange_snapshot

pytestmark = pytest.mark.winrm


def comparable(exchange: dict[str, Any]) -> list[dict[str, Any]]:
    """Servers without what a snapshot does not read (item ids, folders and subjects,
    schedules)."""
    servers = []
    for server in copy.deepcopy(exchange)["servers"]:
        kept = {key: server[key] for key in ("name", "version", "dc", "services", "stores")}
        for store in kept["stores"]:
            for box in store["mailboxes"]:
                box["items"] = len(box["items"])
        servers.append(kept)
    return servers


@pytest.mark.parametrize("version", ["2003", "2016"])
def test_snapshot_reads_what_the_servers_hold(version: str) -> None:
    world = load(scenario("kb278447", 7, seed=7, version=version))
    with serve(world) as site:
        read: dict[str, Any] = exchange_snapshot(site.exchange())
        # describe, mailboxes, services, their running dependents; on 2003 also ExMerge's
        # prerequisites (can it export?)
        per_server = 5 if version == "2003" else 4
        assert site.commands() == per_server * len(site.endpoints)
    document = snapshot(world)
    assert comparable(read) == comparable(document["exchange"])
    for store in (store for server in read["servers"] for store in server["stores"]):
        for box in store["mailboxes"]:
            assert [item["id"] for item in box["items"]] == [
                f"{box['guid']}/{n}" for n in range(len(box["items"]))
            ]

    rebuilt = world_from_json({**document, "exchange": read})
    assert comparable(snapshot(rebuilt)["exchange"]) == comparable(document["exchange"])


@pytest.mark.parametrize("version", ["2003", "2016"])
def test_snapshot_reads_each_mailboxs_last_logon(version: str) -> None:
    """WMI Exchange_Mailbox.LastLogonTime on 2003, Get-MailboxStatistics LastLogonTime on
    2007+: what kb278447 shows an approver beside the items; a creation time no store reports."""
    doc: dict[str, Any] = kb278447(2, 7, version=version, cases=("half-done",))
    world = load(doc)
    with serve(world) as site:
        read: dict[str, Any] = exchange_snapshot(site.exchange())
    boxes = {
        box["guid"]: box
        for server in read["servers"]
        for store in server["stores"]
        for box in store["mailboxes"]
    }
    original = doc["scenario"]["expected"]["cases"]["half-done"]["original"]
    assert boxes[original]["last_logon_at"] == "2026-10-31T17:30:00Z"
    assert all("created_at" not in box for box in boxes.values())
    assert sum("last_logon_at" in box for box in boxes.values()) == 1
