"""A mailbox's creation and last-logon times: optional in the world file, checked like the rest,
kept through a save, reported by the fake store, and set when the store creates a mailbox."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from test_fakes_worldfile import MAILBOX_GUID, minimum_document

from remediate.errors import WorldFormatError
from remediate.fakes import world_from_json, world_to_json
from remediate.model import MailItem, utc

BOX = "$.exchange.servers[0].stores[0].mailboxes[0]"


def with_times(**times: object) -> dict[str, Any]:
    document = minimum_document()
    document["exchange"]["servers"][0]["stores"][0]["mailboxes"][0].update(times)
    return document


def test_the_times_are_reported_and_kept_through_a_save() -> None:
    document = with_times(created_at="2026-10-01T08:00:00Z", last_logon_at="2026-10-31T17:30:00Z")
    world = world_from_json(document)
    [box] = world.exchange.mailboxes("EXCH01", [UUID(MAILBOX_GUID)])
    assert box.created_at == utc("2026-10-01T08:00:00Z")
    assert box.last_logon_at == utc("2026-10-31T17:30:00Z")
    saved = world_to_json(world)
    again = world_from_json(saved)
    assert again.exchange.mailboxes("EXCH01", [UUID(MAILBOX_GUID)]) == [box]


def test_absent_or_null_times_are_unknown_and_not_written() -> None:
    world = world_from_json(with_times(created_at=None))
    [box] = world.exchange.mailboxes("EXCH01", [UUID(MAILBOX_GUID)])
    assert (box.created_at, box.last_logon_at) == (None, None)
    saved_world: dict[str, Any] = world_to_json(world)
    [saved] = [
        b
        for b in saved_world["exchange"]["servers"][0]["stores"][0]["mailboxes"]
        if b["guid"] == MAILBOX_GUID
    ]
    assert "created_at" not in saved and "last_logon_at" not in saved


@pytest.mark.parametrize(
    ("times", "where", "expected"),
    [
        ({"created_at": "yesterday"}, f"{BOX}.created_at", "ISO 8601"),
        ({"last_logon_at": 7}, f"{BOX}.last_logon_at", "expected a string"),
        (
            {"created_at": "2026-10-02T00:00:00Z", "last_logon_at": "2026-10-01T00:00:00Z"},
            f"{BOX}.last_logon_at",
            "before created_at",
        ),
    ],
)
def test_a_bad_time_names_its_place_and_what_is_expected(
    times: dict[str, object], where: str, expected: str
) -> None:
    with pytest.raises(WorldFormatError) as error:
        world_from_json(with_times(**times), source="w.json")
    assert error.value.json_path == where
    assert expected in error.value.message


def test_the_store_stamps_the_creation_of_a_mailbox_it_makes_on_first_delivery() -> None:
    document = minimum_document()
    document["exchange"]["servers"][0]["stores"][0]["mailboxes"].pop(0)
    world = world_from_json(document)
    world.advance(2 * 3600)
    now = world.clock.now()
    assert (
        world.deliver(
            "EXCH01",
            document["directory"]["objects"][1]["attributes"]["legacyExchangeDN"],
            MailItem("m-9", "Inbox", "first"),
        )
        == "delivered"
    )
    [box] = world.exchange.mailboxes("EXCH01", [UUID(MAILBOX_GUID)])
    assert box.created_at == now and box.last_logon_at is None
