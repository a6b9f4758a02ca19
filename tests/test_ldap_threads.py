"""The replication wait reads every DC at once, on threads: calls to one DC take turns (what is
held for it is shared by them), calls to different DCs run together. No DC is needed: the reads
are stood in for."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Collection
from uuid import UUID

import pytest

from remediate.adapters.ldap import ConnectionSettings, LdapDirectory
from remediate.model import DirectoryEntry


class Overlaps:
    """How many calls were inside at once, per DC and in all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inside: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        self.most_in_all = 0

    def enter(self, dc: str) -> None:
        with self._lock:
            self.inside[dc] += 1
            self.most[dc] = max(self.most[dc], self.inside[dc])
            self.most_in_all = max(self.most_in_all, sum(self.inside.values()))

    def leave(self, dc: str) -> None:
        with self._lock:
            self.inside[dc] -= 1


def test_calls_to_one_dc_take_turns_and_calls_to_different_dcs_run_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = LdapDirectory(
        ConnectionSettings(bind_user="u", password="p"),
        domain="corp.example",
        base_dn="DC=corp,DC=example",
        dcs=["dc1", "dc2"],
        writable_dc="dc1",
    )
    seen = Overlaps()

    def refresh(dc: str) -> None:
        seen.enter(dc)
        time.sleep(0.05)  # a search's round trip
        seen.leave(dc)

    def held(
        guids: Collection[UUID], dc: str, *, include_deleted: bool = False
    ) -> dict[UUID, DirectoryEntry]:
        return {}

    monkeypatch.setattr(directory, "_refresh", refresh)
    monkeypatch.setattr(directory, "_read_held", held)
    threads = [
        threading.Thread(target=directory.read, args=([UUID(int=n)], dc))
        for n in range(4)
        for dc in ("dc1", "dc2")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert seen.most == {"dc1": 1, "dc2": 1}
    assert seen.most_in_all == 2
