"""Fault injection: transient and permanent errors before or after an operation, crashes."""

from __future__ import annotations

import pytest
from fakes_support import add_user, new_world

from remediate.errors import PermanentError, TransientError
from remediate.fakes import SimulatedCrash
from remediate.model import ServiceState, UserQuery


def test_a_fault_before_fails_the_call_without_effect() -> None:
    world = new_world()
    user = add_user(world, "Ann Lee")
    world.faults.fail("directory.delete")
    with pytest.raises(TransientError) as failed:
        world.directory.delete(user.guid, tree=False)
    assert failed.value.endpoint == "DC1"
    assert failed.value.operation == "directory.delete"
    assert failed.value.target == f"DC1 directory.delete {user.guid}"
    assert user.guid in world.directory.read([user.guid], "DC1")
    world.directory.delete(user.guid, tree=False)  # times=1: the next call goes through
    assert world.directory.read([user.guid], "DC1") == {}


def test_a_fault_after_takes_effect_then_loses_the_response() -> None:
    world = new_world()
    world.faults.fail("exchange.set_services", kind="permanent", when="after")
    with pytest.raises(PermanentError, match="after it took effect") as failed:
        world.exchange.set_services("EXCH01", ["SMTPSVC"], ServiceState.STOPPED)
    assert failed.value.endpoint == "EXCH01"
    assert world.exchange.service_states("EXCH01", ["SMTPSVC"])["SMTPSVC"] is ServiceState.STOPPED


def test_times_counts_down_and_match_picks_the_calls_by_their_arguments() -> None:
    world = new_world()
    ann, bob = add_user(world, "Ann Lee"), add_user(world, "Bob Ray")
    world.faults.fail("directory.read", times=2, match=str(bob.guid))
    assert ann.guid in world.directory.read([ann.guid], "DC1")
    for _ in range(2):
        with pytest.raises(TransientError):
            world.directory.read([bob.guid], "DC1")
    assert bob.guid in world.directory.read([bob.guid], "DC1")


def test_a_wildcard_fault_fails_any_operation_until_cleared() -> None:
    world = new_world()
    world.faults.fail("*", times=10)
    with pytest.raises(TransientError):
        world.exchange.servers()
    with pytest.raises(TransientError):
        world.directory.find_users(UserQuery())
    world.faults.clear()
    assert world.directory.find_users(UserQuery()) == []


def test_crash_after_n_raises_simulated_crash_once_the_nth_operation_took_effect() -> None:
    world = new_world()
    users = [add_user(world, f"User {n}") for n in range(3)]
    world.faults.fail("directory.delete", match=str(users[1].guid))
    world.faults.crash_after(2)
    world.directory.delete(users[0].guid, tree=False)
    with pytest.raises(TransientError):  # failed before taking effect: not counted
        world.directory.delete(users[1].guid, tree=False)
    with pytest.raises(SimulatedCrash):
        try:
            world.directory.delete(users[2].guid, tree=False)
        except Exception:  # proves a crash is no Exception
            pytest.fail("SimulatedCrash must not be an Exception")
    remaining = world.directory.read([user.guid for user in users], "DC1")
    assert list(remaining) == [users[1].guid]
    world.directory.delete(users[1].guid, tree=False)  # the crash fires once


def test_count_and_log_record_every_operation_in_order() -> None:
    world = new_world()
    world.faults.fail("directory.writable_dc")
    world.exchange.servers()
    with pytest.raises(TransientError):
        world.directory.writable_dc()
    world.directory.domain_controllers()
    assert world.operation_count == world.faults.count == 3
    assert list(world.faults.log) == [
        "exchange.servers",
        "directory.writable_dc",
        "directory.domain_controllers",
    ]


def test_fault_rules_are_checked_when_given() -> None:
    world = new_world()
    with pytest.raises(ValueError, match=r"unknown operation 'directory\.remove'"):
        world.faults.fail("directory.remove")
    with pytest.raises(ValueError, match="times"):
        world.faults.fail("directory.delete", times=0)
    with pytest.raises(ValueError, match="crash_after"):
        world.faults.crash_after(0)
