"""Benchmark: deleting users on a real (Samba) AD DC through kb842101 vs a plain ldap3 loop.

    python bench/ad_delete.py [--users 1000] [--rounds 2]

Starts a Samba AD DC the way the test suite does (root; Samba installed: scripts/install-samba.sh).
Each round creates --users users in each of two fresh OUs, then deletes one OU's users with the
playbook (one apply: connect, discovery, rehearsal, LDIF backups, deletes, replication wait,
verify) and the other's with a plain loop (connect, one paged search, then one delete per
user), the order alternating between rounds. Both sides connect and bind inside the timed part,
as a script run from the command line would. Reports both totals, their ratio (target <= 1.2)
and the LDAP requests the playbook's discovery used (target: one per page, not one per user).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from ad_support import (
    SAMBA_DC_NAME,
    alternate,
    live_world,
    populate,
    quiet,
    round_arguments,
    samba_dc,
    samba_directory,
    total,
    with_playbook,
)
from directory_backends import window_parameters

from remediate.adapters.ldap import LdapDirectory
from remediate.engine.runner import Engine
from remediate.gcpolicy import program_collector
from remediate.model import UserQuery
from remediate.playbooks import get_playbook


def with_plain_loop(directory: LdapDirectory, ou: str) -> float:
    directory.close()
    start = time.perf_counter()
    connection = directory.connection(SAMBA_DC_NAME)
    entries = connection.extend.standard.paged_search(
        ou,
        "(&(objectCategory=person)(objectClass=user))",
        attributes=["objectGUID"],
        paged_size=500,
        generator=False,
    )
    for entry in entries:
        if entry.get("type") == "searchResEntry":
            ok, result, _, _ = connection.delete(entry["dn"])
            assert ok, result
    return time.perf_counter() - start


def main() -> None:
    args = round_arguments(__doc__.split("\n")[0], rounds=2)
    quiet()
    dc = samba_dc.start()
    try:
        directory = samba_directory(dc)
        plain_directory = samba_directory(dc)
        setup = samba_directory(dc).connection(SAMBA_DC_NAME)  # apart: the runs reconnect
        discovery: list[int] = []
        with tempfile.TemporaryDirectory() as state:
            engine = Engine(state_dir=Path(state))

            def playbook(number: int) -> float:
                seconds, requests = with_playbook(
                    directory, engine, populate(setup, dc.base_dn, f"kb{number}", args.users)
                )
                discovery.append(requests)
                return seconds

            def plain(number: int) -> float:
                ou = populate(setup, dc.base_dn, f"plain{number}", args.users)
                return with_plain_loop(plain_directory, ou)

            rounds = alternate(args.rounds, {"playbook": playbook, "plain": plain})
        for one in rounds:
            one["ratio"] = round(float(one["playbook_s"]) / float(one["plain_s"]), 2)
        playbook_s, plain_s = total(rounds, "playbook"), total(rounds, "plain")
        # Discovery of all the users at once: one OU holding them all.
        everyone = populate(setup, dc.base_dn, "everyone", args.users)
        before = directory.requests
        found = directory.find_users(UserQuery(base_dn=everyone))
        users_requests = directory.requests - before
        before = directory.requests
        by_operation = dict(directory.requests_by_operation)
        kb842101 = get_playbook("kb842101")
        world = live_world(directory, everyone)
        selected = kb842101.discover(world, kb842101.parse({"ou": everyone, **window_parameters()}))
        discover_by_operation = {
            operation: count - by_operation.get(operation, 0)
            for operation, count in directory.requests_by_operation.items()
            if count != by_operation.get(operation, 0)
        }
        print(
            json.dumps(
                {
                    "users_per_round": args.users,
                    "users_deleted_each_way": args.users * args.rounds,
                    "rounds": args.rounds,
                    "playbook_s": round(playbook_s, 2),
                    "plain_ldap3_loop_s": round(plain_s, 2),
                    "ratio": round(playbook_s / plain_s, 2),
                    "each_round": rounds,
                    "discovery_requests_per_round": discovery,
                    "discovery_of_all_users": {
                        "users": len(found),
                        "page_size": 1000,
                        "find_users_requests": users_requests,
                        "kb842101_discover_requests": directory.requests - before,
                        "kb842101_discover_requests_by_operation": discover_by_operation,
                        "kb842101_selected": len(selected.selection.users),
                    },
                },
                indent=1,
            )
        )
    finally:
        samba_dc.stop(dc)


if __name__ == "__main__":
    with program_collector():  # as the command line runs
        main()
