"""Send As and Receive As on a mailbox store, which ExMerge's account needs (KB292509): the DACL
parser and access check (remediate/adapters/ldap/access.py) on descriptors built here byte by
byte (MS-DTYP 2.4.6, 2.4.4), and the plan's refusal through the WinRM adapter when the account
lacks either. The Samba DC's own descriptors: tests/test_store_rights_samba.py."""

from __future__ import annotations

import struct
from uuid import UUID

import pytest
from kb_support import load, parameters, scenario
from winrm_support import USER, WinRmWorld, serve

from remediate import Engine, get_playbook
from remediate.adapters.ldap import access
from remediate.adapters.winrm import WinRmExchange
from remediate.adapters.winrm.reads import STORE_RIGHTS
from remediate.engine.runner import EXIT_LEFT_OUT
from remediate.fakes import FakeCatalog

SEND_AS, RECEIVE_AS = list(STORE_RIGHTS)
INHERITED, INHERIT_ONLY, CONTAINER_INHERIT = 0x10, 0x08, 0x02
FULL_CONTROL = 0x000F01FF


def sid(*sub_authorities: int, authority: int = 5) -> bytes:
    return (
        struct.pack("<BB", 1, len(sub_authorities))
        + authority.to_bytes(6, "big")
        + b"".join(struct.pack("<I", sub) for sub in sub_authorities)
    )


ACCOUNT = sid(21, 1, 2, 3, 1105)
GROUP = sid(21, 1, 2, 3, 1200)
OTHER = sid(21, 1, 2, 3, 1300)
TOKEN = frozenset({ACCOUNT, GROUP, *access.LOGON_SIDS})


def ace(kind: int, flags: int, mask: int, who: bytes) -> bytes:
    body = struct.pack("<I", mask) + who
    return struct.pack("<BBH", kind, flags, 4 + len(body)) + body


def object_ace(
    kind: int,
    flags: int,
    right: UUID | None,
    who: bytes,
    *,
    inherited_type: UUID | None = None,
    mask: int = access.CONTROL_ACCESS,
) -> bytes:
    present = (1 if right else 0) | (2 if inherited_type else 0)
    body = struct.pack("<II", mask, present)
    body += (
        (right.bytes_le if right else b"")
        + (inherited_type.bytes_le if inherited_type else b"")
        + who
    )
    return struct.pack("<BBH", kind, flags, 4 + len(body)) + body


def allow(right: UUID | None, who: bytes, flags: int = 0) -> bytes:
    return object_ace(access.ACCESS_ALLOWED_OBJECT, flags, right, who)


def deny(right: UUID | None, who: bytes, flags: int = 0) -> bytes:
    return object_ace(access.ACCESS_DENIED_OBJECT, flags, right, who)


def descriptor(*aces: bytes, with_dacl: bool = True) -> bytes:
    body = b"".join(aces)
    acl = struct.pack("<BBHHH", 4, 0, 8 + len(body), len(aces), 0) + body
    control = 0x8000 | (access.SE_DACL_PRESENT if with_dacl else 0)
    return struct.pack("<BBHIIII", 1, 0, control, 0, 0, 0, 20 if with_dacl else 0) + (
        acl if with_dacl else b""
    )


def test_an_object_ace_grants_the_right_it_names_and_no_other() -> None:
    sd = descriptor(allow(SEND_AS, ACCOUNT))
    assert access.holds(sd, TOKEN, SEND_AS)
    assert not access.holds(sd, TOKEN, RECEIVE_AS)


def test_a_group_of_the_token_grants_and_a_stranger_does_not() -> None:
    assert access.holds(descriptor(allow(RECEIVE_AS, GROUP)), TOKEN, RECEIVE_AS)
    assert not access.holds(descriptor(allow(RECEIVE_AS, OTHER)), TOKEN, RECEIVE_AS)
    assert access.holds(
        descriptor(allow(RECEIVE_AS, access.EVERYONE)), {ACCOUNT} | access.LOGON_SIDS, RECEIVE_AS
    )


def test_explicit_deny_beats_explicit_allow_in_canonical_order() -> None:
    assert not access.holds(
        descriptor(deny(SEND_AS, ACCOUNT), allow(SEND_AS, GROUP)), TOKEN, SEND_AS
    )


def test_an_explicit_allow_wins_over_an_inherited_deny() -> None:
    """KB292509: 'inherited Deny permissions do not prevent access to an object if the object
    has an explicit Allow permission entry' (explicit ACEs come first in the DACL)."""
    sd = descriptor(allow(SEND_AS, GROUP), deny(SEND_AS, ACCOUNT, INHERITED))
    assert access.holds(sd, TOKEN, SEND_AS)


def test_an_inherited_deny_beats_an_inherited_allow_after_it() -> None:
    """KB292509's Exchange 2003 default: administrators inherit Allow together with Deny."""
    sd = descriptor(deny(RECEIVE_AS, GROUP, INHERITED), allow(RECEIVE_AS, GROUP, INHERITED))
    assert not access.holds(sd, TOKEN, RECEIVE_AS)


def test_inherit_only_aces_do_not_apply_to_the_object_itself() -> None:
    sd = descriptor(allow(SEND_AS, ACCOUNT, INHERIT_ONLY | CONTAINER_INHERIT))
    assert not access.holds(sd, TOKEN, SEND_AS)


def test_control_access_for_all_rights_and_full_control_grant_every_right() -> None:
    for sd in (
        descriptor(allow(None, ACCOUNT)),
        descriptor(ace(access.ACCESS_ALLOWED, 0, FULL_CONTROL, GROUP)),
        descriptor(ace(access.ACCESS_ALLOWED, 0, access.GENERIC_ALL, GROUP)),
    ):
        assert access.holds(sd, TOKEN, SEND_AS) and access.holds(sd, TOKEN, RECEIVE_AS)
    # Read and write property, no control access: no extended right.
    assert not access.holds(
        descriptor(ace(access.ACCESS_ALLOWED, 0, 0x30, ACCOUNT)), TOKEN, SEND_AS
    )
    # An object ACE for another right, or a property, only.
    assert not access.holds(descriptor(allow(UUID(int=7), ACCOUNT)), TOKEN, SEND_AS)


def test_an_inherited_object_type_does_not_hide_the_right() -> None:
    sd = descriptor(
        object_ace(
            access.ACCESS_ALLOWED_OBJECT, INHERITED, SEND_AS, ACCOUNT, inherited_type=UUID(int=9)
        )
    )
    assert access.holds(sd, TOKEN, SEND_AS)


def test_no_dacl_grants_everything_and_an_empty_one_nothing() -> None:
    assert access.holds(descriptor(with_dacl=False), TOKEN, SEND_AS)
    assert not access.holds(descriptor(), TOKEN, SEND_AS)


_GOOD = descriptor(allow(SEND_AS, ACCOUNT))


@pytest.mark.parametrize(
    "broken",
    [
        b"",
        b"\x01\x00",
        _GOOD[:-3],  # short; a SID cut off
        _GOOD[:30] + b"\xff\xff" + _GOOD[32:],  # an ACE longer than the descriptor
        _GOOD[:24] + b"\x05\x00" + _GOOD[26:],  # five ACEs announced, one there
    ],
)
def test_a_malformed_descriptor_is_an_error_not_a_guess(broken: bytes) -> None:
    with pytest.raises(access.MalformedDescriptor):
        access.holds(broken, TOKEN, SEND_AS)


@pytest.mark.winrm
def test_a_store_without_receive_as_for_the_account_refuses_the_plan(engine: Engine) -> None:
    doc = scenario("kb278447", 3, seed=11, version="2003")
    world = load(doc)
    server = world.exchange.servers()[0].name
    store = world.exchange.stores(server)[0]
    with serve(world) as site:
        catalog = FakeCatalog(world.directory, world.exchange)
        exchange = WinRmExchange(site.configs, catalog=catalog)
        assert exchange.mail_export_refusal(server) is None
        catalog.withhold(store.dn, USER, {RECEIVE_AS})
        refusal = WinRmExchange(site.configs, catalog=catalog).mail_export_refusal(server)
        assert refusal is not None and "\n" not in refusal
        assert refusal.startswith(
            f"grant Receive As on {store.storage_group}\\{store.name} "
            f"({server}) to {USER} (Exchange System Manager"
        )
        catalog.withhold(store.dn, USER, {SEND_AS})
        both = WinRmExchange(site.configs, catalog=catalog).mail_export_refusal(server)
        assert both is not None and both.startswith("grant Send As and Receive As on ")
        # The plan leaves out whom ExMerge would fail on, saying what to grant.
        world_exchange = WinRmExchange(site.configs, catalog=catalog)
        planned = engine.plan(
            get_playbook("kb278447"), WinRmWorld(world, world_exchange), parameters(doc)
        )
        left_out = [f for f in planned.findings if f.kind == "left-out"]
        assert planned.exit_code == EXIT_LEFT_OUT and left_out
        assert all("grant Send As and Receive As on " in f.message for f in left_out)
        assert not {call.operation for host in site.hosts.values() for call in host.calls} & {
            "export",
            "import",
            "disable",
            "reconnect",
            "purge",
        }
