"""A 100,000-user world loads, is copied for a rehearsal and searched within the budget."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fakes_support import STORE_DN

from remediate.fakes import world_from_json
from remediate.model import UserQuery

USERS = 100_000
OUS = 50


def big_document() -> dict[str, Any]:
    objects, mailboxes = [], []
    for n in range(USERS):
        mailbox, sam = str(UUID(int=2**64 + n)), f"user{n}"
        legacy_dn = f"/o=Corp/ou=First Administrative Group/cn=Recipients/cn={sam}"
        attributes = {"sAMAccountName": sam, "displayName": f"User {n}", "mailNickname": sam}
        attributes |= {"legacyExchangeDN": legacy_dn, "homeMDB": STORE_DN}
        attributes |= {"msExchMailboxGuid": mailbox}
        objects.append({
            "dn": f"CN=User {n},OU=Dept{n % OUS},OU=Users,DC=corp,DC=example",
            "object_class": "user", "guid": str(UUID(int=n + 1)),
            "when_created": f"2026-10-{1 + n % 28:02d}T00:00:00Z", "protected": False,
            "attributes": attributes,
        })  # fmt: skip
        item = {"id": f"m{n}", "folder": "Inbox", "subject": "hello"}
        mailboxes.append({"guid": mailbox, "legacy_dn": legacy_dn, "display_name": f"User {n}",
                          "disconnected_at": None, "items": [item]})  # fmt: skip
    dcs = [("DC1", 0), ("DC2", 900), ("DC3", 1800)]
    store = {"name": "Store", "storage_group": "SG", "dn": STORE_DN, "mailboxes": mailboxes}
    server = {"name": "EXCH01", "version": "2003", "dc": "DC2", "services": {}, "stores": [store]}
    return {
        "format": "remediate.world/1",
        "directory": {
            "domain": "corp.example",
            "base_dn": "DC=corp,DC=example",
            "dcs": [{"name": name, "replication_delay_s": delay} for name, delay in dcs],
            "objects": objects,
        },
        "exchange": {"servers": [server]},
    }


def resident_mb() -> float | None:
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    line = next(line for line in status.read_text().splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.mark.slow
def test_a_100k_user_world_loads_clones_and_answers_within_budget() -> None:
    before = resident_mb()
    started = time.process_time()
    world = world_from_json(big_document())
    gc.collect()  # the one collection over the new heap is load's cost, not the next step's
    loaded = time.process_time()
    rehearsal = world.rehearsal()
    cloned = time.process_time()
    query = UserQuery(base_dn="OU=Dept7,OU=Users,DC=corp,DC=example", mail_enabled_only=True)
    found = rehearsal.directory.find_users(query, "DC3")
    searched = time.process_time()
    assert len(found) == USERS // OUS
    # CPU time, so a busy machine does not fail the test. Measured on an idle machine: load
    # ~4 s (JSON parsing included), rehearsal ~0.1 s, search ~0.01 s, ~520 MB. The bounds leave
    # room for slow CI machines; they catch complexity regressions (a deep copy per rehearsal,
    # a scan per lookup), not a few percent.
    assert loaded - started < 30, f"load took {loaded - started:.1f} s"
    assert cloned - loaded < 3, f"rehearsal took {cloned - loaded:.1f} s"
    assert searched - cloned < 3, f"find_users took {searched - cloned:.1f} s"
    after = resident_mb()
    if before is not None and after is not None:
        assert after - before < 1024, f"{after - before:.0f} MB"
    for victim in found[:10]:
        rehearsal.directory.delete(victim.guid, tree=False)
    rehearsal.advance(1800)
    assert len(rehearsal.directory.find_users(query, "DC3")) == len(found) - 10
    assert len(world.directory.find_users(query, "DC3")) == len(found)
