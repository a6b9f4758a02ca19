"""The shared hostile corpus (tests/hostile_values.py) through the Directory port, on the fakes
and on the Samba AD DC: every value the directory accepts is created as a user's name (else only
as its legacyExchangeDN), found by exactly the intended searches (an escaped filter, a search
based at its DN, its <GUID=> name), and deleted by kb842101 with nothing else matched or
touched. What the directory refuses is counted, with the reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import pytest
from directory_backends import DirectoryBackend, Rejected, SambaBackend, unique
from hostile_values import HOSTILE
from kb_support import ldif_backups, run_dir

from remediate import Engine, get_playbook
from remediate.dn import rdn_value
from remediate.engine.runner import EXIT_DONE
from remediate.model import DirectoryEntry, UserQuery, iso
from remediate.testing import apply_confirmed, change_keys

pytestmark = pytest.mark.security

# The scope kb842101 deletes in, and the look-alike a DN parsed without its escapes would name.
TARGET_OU = 'Migrated, "Old" +<x>;=#*()\\'
LOOK_ALIKE_OU = "Migrated"


def legacy_dn(value: str) -> str:
    return f"/o=Org/ou=First Administrative Group/cn=Recipients/cn={value}"


@dataclass(frozen=True)
class Placed:
    value: str
    entry: DirectoryEntry
    as_name: bool  # False: the directory refused the value as a name; it is only an attribute


def place(
    backend: DirectoryBackend,
    parent: str,
    index: int,
    value: str,
    *,
    refused: Counter[str],
    suffix: str = "",
) -> Placed | None:
    """The value as the user's CN, displayName and legacyExchangeDN; else (the name refused)
    as its legacyExchangeDN only; else counted in ``refused`` by reason."""
    sam = unique(f"h{index}-")
    attempts = (
        (value, {"displayName": value, "legacyExchangeDN": legacy_dn(value) + suffix}),
        (f"h{index}", {"legacyExchangeDN": legacy_dn(value) + suffix}),
    )
    for number, (name, attributes) in enumerate(attempts):
        try:
            entry = backend.add(parent, name, "user", {"sAMAccountName": sam, **attributes})
        except (Rejected, ValueError) as error:  # the fake raises ValueError
            reason = error.reason if isinstance(error, Rejected) else f"ValueError: {error}"
            refused[f"{'name' if number == 0 else 'value'} {value[:12]!r}: {reason}"] += 1
            continue
        return Placed(value, entry, as_name=number == 0)
    return None


def up_to_nul(value: str) -> str:
    return value.split("\x00", 1)[0]


def assert_found_exactly(
    backend: DirectoryBackend, placed: Placed, legacy: dict[UUID, str], quirks: Counter[str]
) -> None:
    """``legacy``: every user placed (targets and look-alikes) and its legacyExchangeDN."""
    directory, guid = backend.directory, placed.entry.guid
    [read] = directory.read([guid], backend.dc).values()  # by objectGUID: a binary filter
    assert read.dn == placed.entry.dn
    assert read.get("legacyExchangeDN") == legacy_dn(placed.value)
    if placed.as_name:
        assert rdn_value(read.dn) == placed.value
        assert read.get("displayName") == placed.value
    wanted = legacy_dn(placed.value)
    by_filter = directory.find_users(UserQuery(legacy_exchange_dns=frozenset({wanted})), backend.dc)
    expected = {guid}
    if isinstance(backend, SambaBackend):
        # Samba stores and returns a NUL exactly, but its matching stops at the first NUL on
        # either side (C strings): the escaped filter also matches values equal up to a NUL.
        expected = {g for g, value in legacy.items() if up_to_nul(value) == up_to_nul(wanted)}
        quirks["Samba matched more: equal up to a NUL"] += len(expected) > 1
    assert {e.guid for e in by_filter} == expected, f"filter for {placed.value!r}"
    by_dn = directory.find_users(UserQuery(base_dn=read.dn), backend.dc)
    assert [e.guid for e in by_dn] == [guid], f"search based at {read.dn!r}"


def test_every_hostile_value_is_found_exactly_and_deleted_alone(
    backend: DirectoryBackend, engine: Engine
) -> None:
    scope = backend.add(backend.directory.base_dn, unique("hostile-"), "organizationalUnit").dn
    target = backend.add(scope, TARGET_OU, "organizationalUnit").dn
    look_alike = backend.add(scope, LOOK_ALIKE_OU, "organizationalUnit").dn
    refused: Counter[str] = Counter()
    placed = [place(backend, target, i, value, refused=refused) for i, value in enumerate(HOSTILE)]
    decoys = [
        place(backend, look_alike, i, value, refused=Counter(), suffix=" (decoy)")
        for i, value in enumerate(HOSTILE)
    ]
    targets = [p for p in placed if p is not None]
    kept = {p.entry.guid: p.entry for p in decoys if p is not None}

    quirks: Counter[str] = Counter()
    legacy = {
        p.entry.guid: str(p.entry.get("legacyExchangeDN"))
        for p in (*targets, *decoys)
        if p is not None
    }
    for one in targets:
        assert_found_exactly(backend, one, legacy, quirks)
    everyone = frozenset(legacy_dn(p.value) for p in targets)  # one OR filter of them all
    found = backend.directory.find_users(
        UserQuery(base_dn=target, legacy_exchange_dns=everyone), backend.dc
    )
    assert sorted(e.guid for e in found) == sorted(p.entry.guid for p in targets)

    playbook, world = get_playbook("kb842101"), backend.world(scope)
    made = [p.entry.when_created for p in targets]
    parameters = {
        "ou": target,
        "created_after": iso(min(made)),
        "created_before": iso(max(made) + timedelta(seconds=1)),
    }
    planned = engine.plan(playbook, world, parameters)
    applied = apply_confirmed(engine, playbook, world, parameters)
    assert applied.exit_code == EXIT_DONE, applied.error
    assert change_keys(applied.changes) == change_keys(planned.changes)
    deletions = {c.label for c in applied.changes if c.step == "delete-ad-user"}
    assert deletions == {p.entry.dn for p in targets}
    assert {r.dn for r in ldif_backups(run_dir(applied))} == deletions
    gone: list[UUID] = [p.entry.guid for p in targets]
    assert backend.directory.read(gone, backend.dc) == {}
    assert backend.directory.read(list(kept), backend.dc) == kept  # untouched, every attribute

    as_name = sum(p.as_name for p in targets)
    print(
        f"hostile corpus on {type(backend).__name__}: {len(HOSTILE)} values, "
        f"{as_name} created as names (and attributes), {len(targets) - as_name} as attribute "
        f"values only, {len(HOSTILE) - len(targets)} refused entirely; refusals: "
        f"{dict(sorted(refused.items()))}; {len(kept)} look-alikes untouched; quirks: "
        f"{dict(quirks)}"
    )
    assert len(targets) >= 100
