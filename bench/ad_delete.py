"""Benchmark: deleting users on a real (Samba) AD DC through kb842101 vs a plain ldap3 loop.

    python bench/ad_delete.py [--users 1000] [--rounds 4]

Starts a Samba AD DC the way the test suite does (root; Samba installed: scripts/install-samba.sh).
Each round creates users/rounds users in two fresh OUs, then deletes one OU's users with the
playbook (apply: discovery, rehearsal, LDIF backups, deletes, replication wait, verify) and the
other's with a plain loop (one paged search, then one delete per user), the order alternating
between rounds. Reports both totals, their ratio (target <= 1.2) and the LDAP requests the
playbook's discovery used (target: one per page, not one per user).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from ad_support import (
    SAMBA_DC_NAME,
    live_world,
    populate,
    quiet,
    samba_dc,
    samba_directory,
    with_playbook,
)

from remediate.adapters.ldap import LdapDirectory
from remediate.engine.runner import Engine
from remediate.model import UserQuery
from remediate.playbooks import get_playbook


def with_plain_loop(directory: LdapDirectory, ou: str) -> float:
    connection = directory.connection(SAMBA_DC_NAME)
    start = time.perf_counter()
    entries = connection.extend.standard.paged_search(
        ou, "(&(objectCategory=person)(objectClass=user))", attributes=["objectGUID"],
        paged_size=500, generator=False,
    )
    for entry in entries:
        if entry.get("type") == "searchResEntry":
            ok, result, _, _ = connection.delete(entry["dn"])
            assert ok, result
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    quiet()
    per_round = args.users // args.rounds
    dc = samba_dc.start()
    try:
        directory = samba_directory(dc)
        plain_directory = samba_directory(dc)
        setup = samba_directory(dc).connection(SAMBA_DC_NAME)  # apart: the runs reconnect
        playbook_s = plain_s = 0.0
        discovery: list[int] = []
        with tempfile.TemporaryDirectory() as state:
            engine = Engine(state_dir=Path(state))
            for number in range(args.rounds):
                with_kb = populate(setup, dc.base_dn, f"kb{number}", per_round)
                plain = populate(setup, dc.base_dn, f"plain{number}", per_round)
                order = ("kb", "plain") if number % 2 == 0 else ("plain", "kb")
                for which in order:
                    if which == "kb":
                        seconds, requests = with_playbook(directory, engine, with_kb)
                        playbook_s += seconds
                        discovery.append(requests)
                    else:
                        plain_s += with_plain_loop(plain_directory, plain)
        # Discovery of all the users at once: one OU holding them all.
        everyone = populate(setup, dc.base_dn, "everyone", args.users)
        before = directory.requests
        found = directory.find_users(UserQuery(base_dn=everyone))
        users_requests = directory.requests - before
        before = directory.requests
        kb842101 = get_playbook("kb842101")
        world = live_world(directory, everyone)
        selected = kb842101.discover(world, kb842101.parse({"ou": everyone}))
        print(json.dumps({
            "users_deleted_each_way": per_round * args.rounds,
            "rounds": args.rounds,
            "playbook_s": round(playbook_s, 2),
            "plain_ldap3_loop_s": round(plain_s, 2),
            "ratio": round(playbook_s / plain_s, 2),
            "discovery_requests_per_round": discovery,
            "discovery_of_all_users": {
                "users": len(found), "page_size": 1000, "find_users_requests": users_requests,
                "kb842101_discover_requests": directory.requests - before,
                "kb842101_selected": len(selected.selection.users),
            },
        }, indent=1))
    finally:
        samba_dc.stop(dc)


if __name__ == "__main__":
    main()
