"""The fakes' recipient policy: a reconnect (and Update-Recipient, or the Recipient Update
Service's Update Now on 2000/2003) stamps only the policy's addresses, so what a strip removed
beyond them is gone unless it is restored."""

from __future__ import annotations

from uuid import UUID

import pytest
from fakes_support import STORE_DN, add_user, new_world

from remediate.fakes import FakeWorld
from remediate.model import (
    DISABLE_MAILBOX_ATTRIBUTES,
    EXCHANGE_ATTRIBUTES,
    ConnectAs,
    ExchangeVersion,
    MailboxKind,
)
from remediate.ports import ManualActionRequired

CUSTOM = [
    "SMTP:ann.own@corp.example",
    "smtp:annlee@old.corp.example",
    "X500:/o=Corp/ou=Site55/cn=Recipients/cn=annlee",
    "X400:c=US;a= ;p=Corp;o=Exchange;s=annlee;",
]


def _stripped_and_reconnected(
    version: ExchangeVersion, how: ConnectAs | None = None, **extra: str
) -> tuple[FakeWorld, UUID]:
    world = new_world(version=version, server_dc="DC1")
    original = add_user(world, "Original")
    user = add_user(world, "Ann Lee")
    assert original.mailbox
    world.directory.modify(
        user.guid, {"proxyAddresses": CUSTOM, "mail": "ann.own@corp.example", **extra}
    )
    world.directory.modify(original.guid, {"msExchMailboxGuid": None})
    if version.legacy:
        world.advance(86400)  # the nightly cleanup agent disconnects the original
        world.directory.modify(user.guid, dict.fromkeys(EXCHANGE_ATTRIBUTES))
    else:
        world.exchange.run_cleanup_agent("EXCH01", [STORE_DN])
        world.exchange.disable_mailboxes("EXCH01", [user.guid])
    world.exchange.reconnect_mailboxes(
        "EXCH01", [(original.mailbox, user.guid)], None if how is None else {user.guid: how}
    )
    return world, user.guid


@pytest.mark.parametrize(
    ("version", "stamped"),
    [
        (
            ExchangeVersion.E2003,
            ["SMTP:annlee@corp.example", "X400:c=US;a= ;p=corp.example;o=Exchange;s=annlee;"],
        ),
        (ExchangeVersion.E2016, ["SMTP:annlee@corp.example"]),
    ],
)
def test_a_reconnect_gets_only_the_policys_addresses(
    version: ExchangeVersion, stamped: list[str]
) -> None:
    world, user = _stripped_and_reconnected(version)
    entry = world.directory.read([user], "DC1")[user]
    assert entry.attributes["proxyAddresses"] == stamped
    assert entry.get("mail") == "annlee@corp.example"


def test_disable_mailbox_clears_recipient_settings_and_the_archive_comes_back_with_archive() -> (
    None
):
    world, user = _stripped_and_reconnected(
        ExchangeVersion.E2016,
        ConnectAs(MailboxKind.USER, archive=True),
        msExchHideFromAddressLists="TRUE",
        msExchArchiveGUID="6f1c1c4e-7d7e-4b52-9a55-0d0f4b1a2c3d",
        msExchArchiveName="Online Archive - annlee",
    )
    entry = world.directory.read([user], "DC1")[user]
    assert entry.get("msExchHideFromAddressLists") is None  # cleared by Disable-Mailbox
    assert entry.get("msExchArchiveGUID") == "6f1c1c4e-7d7e-4b52-9a55-0d0f4b1a2c3d"
    assert entry.get("msExchRecipientTypeDetails") == "1"
    assert "msExchHideFromAddressLists" in DISABLE_MAILBOX_ATTRIBUTES


def test_connect_mailbox_takes_the_room_parameter_set_but_archive_only_with_a_user() -> None:
    world, user = _stripped_and_reconnected(ExchangeVersion.E2016, ConnectAs(MailboxKind.ROOM))
    assert world.directory.read([user], "DC1")[user].get("msExchRecipientTypeDetails") == "16"
    with pytest.raises(Exception, match="User set only"):
        _stripped_and_reconnected(ExchangeVersion.E2016, ConnectAs(MailboxKind.SHARED, True))


def test_update_recipient_keeps_the_primary_of_a_user_excluded_from_the_policy() -> None:
    world, user = _stripped_and_reconnected(ExchangeVersion.E2016)
    world.directory.modify(
        user,
        {
            "proxyAddresses": CUSTOM,
            "mail": "ann.own@corp.example",
            "msExchPoliciesExcluded": "{26491cfc}",
        },
    )
    world.exchange.update_recipients("EXCH01", [user])
    entry = world.directory.read([user], "DC1")[user]
    assert entry.get("mail") == "ann.own@corp.example"
    assert sorted(entry.attributes["proxyAddresses"]) == sorted(
        [*CUSTOM, "smtp:annlee@corp.example"]
    )


def test_update_recipient_makes_the_policys_address_primary_for_a_governed_user() -> None:
    world, user = _stripped_and_reconnected(ExchangeVersion.E2016)
    world.directory.modify(user, {"proxyAddresses": CUSTOM, "mail": "ann.own@corp.example"})
    world.exchange.update_recipients("EXCH01", [user])
    entry = world.directory.read([user], "DC1")[user]
    assert entry.get("mail") == "annlee@corp.example"
    assert "smtp:ann.own@corp.example" in entry.attributes["proxyAddresses"]


def test_on_exchange_2003_the_operator_runs_the_recipient_update_service() -> None:
    world, user = _stripped_and_reconnected(ExchangeVersion.E2003)
    with pytest.raises(ManualActionRequired, match="Update Now") as manual:
        world.exchange.update_recipients("EXCH01", [user])
    assert "Recipient Update Services" in manual.value.instructions
