"""Owners of 1,000 mailboxes read on the Samba DC's global catalog, as the WinRM adapter now
reads them for a ``mailboxes`` call (ports.ExchangeCatalog.mailbox_owners), instead of one ADSI
search per mailbox on the Exchange server. Prints JSON: LDAP requests and seconds per round.

    python bench/gc_owners.py [--users 1000] [--rounds 3]
"""

from __future__ import annotations

import json
import time
import uuid

from ad_support import quiet, round_arguments, samba_dc, samba_directory


def main() -> None:
    arguments = round_arguments(__doc__ or "", rounds=3)
    quiet()
    dc = samba_dc.start()
    try:
        directory = samba_directory(dc)
        connection = directory.connection(directory.writable_dc())
        ou = f"OU=gc-owners-{uuid.uuid4().hex[:8]},{dc.base_dn}"
        connection.add(ou, ["organizationalUnit"])
        mailboxes = [uuid.uuid4() for _ in range(arguments.users)]
        for number, mailbox in enumerate(mailboxes):
            connection.add(
                f"CN=owner {number},{ou}",
                ["user"],
                {"sAMAccountName": f"gco-{number}", "msExchMailboxGuid": mailbox.bytes_le},
            )
        rounds = []
        for _ in range(arguments.rounds):
            before = directory.requests
            started = time.perf_counter()
            found = directory.mailbox_owners(mailboxes)
            seconds = time.perf_counter() - started
            assert all(len(owners) == 1 for owners in found.values())
            rounds.append(
                {"seconds": round(seconds, 3), "ldap_requests": directory.requests - before}
            )
        print(json.dumps({"mailboxes": arguments.users, "rounds": rounds}, indent=2))
        directory.close()
    finally:
        samba_dc.stop(dc)


if __name__ == "__main__":
    main()
