"""A run that crashes after any backend operation is continued by ``resume`` to the very state an
uninterrupted run leaves, with no mail lost and nothing outside its scope touched: both
playbooks, every Exchange version the fakes model (the sweep is in crash_support, once per
distinct sequence of operations;
``python bench/reliability.py crash`` prints its table)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from crash_support import (
    HOURLY,
    Reference,
    Sweep,
    crash_and_continue,
    every_case,
    first_case_on_the_same_route,
    promised_end_state,
    sweep,
    touched_outside,
    uninterrupted,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from run_support import Case, lost_items, only_run, quiet_events


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A simulated crash drops what the journal had not written yet and keeps what it wrote,
    # with or without fsync; fsync only matters for a power loss (test_journal_and_lock checks
    # it is called). Without it the thousand runs here take a third of the time.
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    yield from quiet_events()


@pytest.mark.parametrize("case", every_case(), ids=lambda case: case.id)
def test_uninterrupted_run_keeps_the_scenarios_promises(case: Case, tmp_path: Path) -> None:
    doc = case.document()
    reference = uninterrupted(case, doc, tmp_path / "state")
    assert promised_end_state(case, doc, reference.after) == []
    run_dir = only_run(tmp_path / "state")
    assert lost_items(reference.before, reference.after, run_dir) == []
    assert touched_outside(case, doc, reference.before, reference.after) == []


@pytest.mark.parametrize("case", every_case(), ids=lambda case: case.id)
def test_crash_after_any_operation_then_resume_reaches_the_uninterrupted_end_state(
    case: Case, tmp_path: Path
) -> None:
    reference = uninterrupted(case, case.document(), tmp_path / "reference")
    if first_case_on_the_same_route(case, reference.log, tmp_path / "routes") != case:
        return  # the same crash points as an earlier version's, which its own case sweeps
    result = sweep(case, tmp_path, reference)

    assert not result.failures, "\n".join(result.failures[:25])
    assert result.converged == result.crash_points == result.reference.effective
    assert (result.lost, result.outside) == (0, 0)
    # Discovery comes first (refused, then a fresh apply); every later point is resumed.
    refused = result.refused
    assert refused == list(range(1, len(refused) + 1)) and refused
    assert result.resumed == list(range(len(refused) + 1, result.reference.effective + 1))


# Several servers, their batches concurrent: the crash lands amid batches in flight on other
# servers, in an operation order hypothesis draws (which batch due at a moment goes on).
CONCURRENT = [
    Case("kb842101", "2016", servers=3),
    Case("kb278447", "2016", servers=3),
    Case("kb278447", "2003", servers=3, cleanup_interval_s=HOURLY),
]
_REFERENCES: dict[Case, Reference] = {}


@pytest.mark.parametrize("case", CONCURRENT, ids=lambda case: case.id)
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_crash_amid_concurrent_batches_in_any_operation_order_resumes_to_the_same_end_state(
    case: Case, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    doc = case.document()
    if case not in _REFERENCES:
        _REFERENCES[case] = uninterrupted(case, doc, tmp_path_factory.mktemp("reference"))
    reference = _REFERENCES[case]
    n = data.draw(st.integers(1, reference.effective), label="crash after operation")
    order = random.Random(data.draw(st.integers(0, 2**32 - 1), label="operation order"))
    result = Sweep(case, reference)

    crash_and_continue(result, doc, n, tmp_path_factory.mktemp("crash"), choose=order.choice)

    assert result.failures == []
