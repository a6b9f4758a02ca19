"""Random transient-fault schedules: every call of every operation kind fails with probability
0.2 (before it does anything, or after it took effect with the response lost), never more than
three calls of one kind running. Every run converges to the fault-free end state, loses no mail,
touches nothing outside its scope, and retries each injected fault exactly once (a retry that
gave up would show as fewer retries than faults). ``python bench/reliability.py faults`` prints
the retry counts per case and per operation kind."""

from __future__ import annotations

import inspect
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from crash_support import Reference, every_case, uninterrupted
from hypothesis import given, settings
from hypothesis import strategies as st
from run_support import Case, quiet_events
from schedule_support import run_with_random_faults

from remediate.fakes import FakeDirectory, FakeExchange
from remediate.fakes.world import MUTATIONS
from remediate.ports import (
    DIRECTORY_CHANGES,
    DIRECTORY_LEASE,
    DIRECTORY_READS,
    EXCHANGE_CHANGES,
    EXCHANGE_READS,
    Directory,
    Exchange,
)


@pytest.fixture(autouse=True, scope="module")
def _quiet() -> Iterator[None]:
    yield from quiet_events()


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # no fault here is a power loss


_references: dict[Case, Reference] = {}


def reference(case: Case) -> Reference:
    if case not in _references:
        with tempfile.TemporaryDirectory() as work:
            _references[case] = uninterrupted(case, case.document(), Path(work))
    return _references[case]


@settings(max_examples=160, deadline=None, derandomize=True)
@given(case=st.sampled_from(every_case()), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_a_random_fault_schedule_at_20_percent_converges_with_one_retry_per_fault(
    case: Case, seed: int
) -> None:
    with tempfile.TemporaryDirectory() as work:
        run = run_with_random_faults(case, case.document(), reference(case), seed, Path(work))

    assert run.verdict.converged, "\n".join(run.verdict.problems)
    assert (run.verdict.lost, run.verdict.outside) == (0, 0)
    assert run.injected, "a schedule at 20% injected no fault"
    assert run.retried == run.injected


def test_every_operation_is_either_a_read_retried_per_call_or_a_mutation() -> None:
    operations = {f"directory.{op}" for op in FakeDirectory.OPERATIONS}
    operations |= {f"exchange.{op}" for op in FakeExchange.OPERATIONS}
    reads = {f"directory.{op}" for op in DIRECTORY_READS}
    reads |= {f"exchange.{op}" for op in EXCHANGE_READS}
    assert reads.isdisjoint(MUTATIONS)
    assert reads | MUTATIONS == operations


@pytest.mark.parametrize(
    ("port", "reads", "changes", "lease"),
    [
        (Directory, DIRECTORY_READS, DIRECTORY_CHANGES, DIRECTORY_LEASE),
        (Exchange, EXCHANGE_READS, EXCHANGE_CHANGES, frozenset()),
    ],
)
def test_every_port_method_is_classed_once(
    port: type, reads: frozenset[str], changes: frozenset[str], lease: frozenset[str]
) -> None:
    methods = {
        name
        for name, member in vars(port).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }
    assert reads.isdisjoint(changes) and lease.isdisjoint(reads | changes)
    assert reads | changes | lease == methods
