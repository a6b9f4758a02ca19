"""The collector's policy is the program's: inside ``program_collector`` full passes are paced by
the heap's size, so their cost grows with the run, not with its square, what the program says
lives as long as it is frozen and world building pauses the collector; everything is handed back
at the end. The library (the engine above all) leaves the collector as its caller set it."""

from __future__ import annotations

import ast
import gc
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
import structlog
from kb_support import scenario_parameters

import remediate.engine
from remediate import gcpolicy
from remediate.engine.runner import Engine, Safety
from remediate.fakes.scenarios import scenario_world
from remediate.gcpolicy import building, full_pass_threshold, program_collector, settled
from remediate.playbooks import get_playbook


@pytest.fixture(autouse=True)
def _collector_left_as_found() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    assert gcpolicy.POLICY.after_pass not in gc.callbacks


def test_the_default_threshold_is_the_floor_and_a_large_heap_raises_it() -> None:
    assert full_pass_threshold(0, (700, 10, 10)) == 10
    assert full_pass_threshold(100_000, (700, 10, 10)) == 10  # small heaps: as before
    # Half of a million blocks, 7,000 objects taken in per middle pass: 71 of those passes.
    assert full_pass_threshold(1_000_000, (700, 10, 10)) == 71
    assert full_pass_threshold(10_000_000, (700, 10, 10)) == 714
    assert full_pass_threshold(1_000_000, (700, 10, 500)) == 500  # a caller's higher one stays
    assert full_pass_threshold(1_000_000, (0, 0, 10)) == 500_000  # no division by zero


def test_inside_the_threshold_follows_the_heap_and_is_restored_after() -> None:
    gc.set_threshold(700, 10, 10)
    with program_collector():
        assert gcpolicy.POLICY.after_pass in gc.callbacks
        assert gc.get_threshold()[2] == full_pass_threshold(sys.getallocatedblocks(), (700, 10, 10))
        held = [[n] for n in range(200_000)]  # the heap grows: the next full pass re-paces
        gc.collect()
        assert gc.get_threshold()[2] == full_pass_threshold(sys.getallocatedblocks(), (700, 10, 10))
        assert gc.get_threshold()[2] >= 10 + 200_000 // 2 // 7_000
        del held
    assert gc.get_threshold() == (700, 10, 10)
    assert gcpolicy.POLICY.after_pass not in gc.callbacks


def test_nested_and_failing_uses_restore_only_at_the_outermost_end() -> None:
    gc.set_threshold(500, 5, 7)
    with pytest.raises(RuntimeError), program_collector():
        with program_collector():
            pass
        assert gcpolicy.POLICY.after_pass in gc.callbacks  # the outer one still paces
        raise RuntimeError("boom")
    assert gc.get_threshold() == (500, 5, 7)


def test_threads_each_pacing_restore_the_threshold_once_all_are_done() -> None:
    gc.set_threshold(700, 10, 10)
    inside, leave = threading.Barrier(3), threading.Event()

    def run() -> None:
        with program_collector():
            inside.wait()
            leave.wait()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    inside.wait()
    assert gc.callbacks.count(gcpolicy.POLICY.after_pass) == 1
    leave.set()
    for thread in threads:
        thread.join()
    assert gc.get_threshold() == (700, 10, 10)


def _full_passes(batches: int, *, paced_run: bool) -> int:
    """Full passes while a large long-lived heap sees batches of objects that live for one
    batch each (as a run's observations of every user on a server do)."""
    passes = [0]

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info["generation"] == 2:
            passes[0] += 1

    held = [[n] for n in range(300_000)]
    gc.collect()
    gc.callbacks.append(count)
    try:
        with program_collector() if paced_run else nullcontext():
            for _ in range(batches):
                batch = [[n] for n in range(30_000)]
                del batch
    finally:
        gc.callbacks.remove(count)
    del held
    return passes[0]


def test_batches_living_into_the_oldest_generation_no_longer_force_a_full_pass_each() -> None:
    gc.set_threshold(700, 10, 10)
    unpaced = _full_passes(60, paced_run=False)
    paced_passes = _full_passes(60, paced_run=True)
    # CPython's guard counts each batch as newcomers to generation 2 although they are gone
    # before the next full pass: it makes one full pass over the 300,000 held objects every
    # few batches. Paced by the heap, a full pass waits until the young generations have
    # taken in half the heap.
    assert unpaced >= 10
    assert paced_passes <= unpaced // 4


def test_settled_freezes_what_exists_only_inside_and_it_is_handed_back_at_the_end() -> None:
    assert gc.get_freeze_count() == 0
    settled()  # a library caller's collector is not the library's to change
    assert gc.get_freeze_count() == 0
    with program_collector():
        world = [[n] for n in range(10_000)]
        settled()
        assert gc.get_freeze_count() >= len(world)
    assert gc.get_freeze_count() == 0


def test_once_settled_full_passes_are_paced_by_the_heap_they_scan() -> None:
    gc.set_threshold(700, 10, 10)
    with program_collector():
        world = [[n] for n in range(300_000)]
        unfrozen = full_pass_threshold(sys.getallocatedblocks(), (700, 10, 10))
        settled()  # the world is no longer scanned: it no longer delays a full pass
        scanned = sys.getallocatedblocks() - gcpolicy.POLICY.frozen_blocks
        assert gc.get_threshold()[2] == full_pass_threshold(scanned, (700, 10, 10))
        assert gc.get_threshold()[2] < unfrozen // 2
        gc.collect()
        assert gc.get_threshold()[2] == full_pass_threshold(
            sys.getallocatedblocks() - gcpolicy.POLICY.frozen_blocks, (700, 10, 10)
        )
        del world
    assert gcpolicy.POLICY.frozen_blocks == 0


def test_building_pauses_the_collector_only_inside_and_only_if_it_ran() -> None:
    with building():
        assert gc.isenabled()  # outside a program's policy: left alone
    with program_collector():
        with building():
            assert not gc.isenabled()
        assert gc.isenabled()
        gc.disable()
        try:
            with building():
                assert not gc.isenabled()
            assert not gc.isenabled()  # a collector the program switched off stays off
        finally:
            gc.enable()


@pytest.mark.parametrize("kb", ["kb278447", "kb842101"])
def test_plan_and_apply_leave_a_library_callers_collector_alone(kb: str, tmp_path: Path) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    gc.set_threshold(700, 10, 10)
    seen: set[tuple[tuple[int, int, int], bool, int]] = set()

    def subscriber(record: Any) -> None:
        seen.add(
            (gc.get_threshold(), gcpolicy.POLICY.after_pass in gc.callbacks, gc.get_freeze_count())
        )

    playbook = get_playbook(kb)
    world = scenario_world(kb, 20, 1)
    parameters = scenario_parameters(world)
    engine = Engine(state_dir=tmp_path, subscribers=(subscriber,))
    plan = engine.plan(playbook, world, parameters)
    applied = engine.apply(playbook, world, parameters, safety=Safety(confirm=lambda _: True))
    assert plan.changes and applied.state == "done"
    assert seen == {((700, 10, 10), False, 0)}


def _uses_gc(tree: ast.AST) -> list[str]:
    """Where a module imports the collector (or the program's policy) or names it."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                a.name
                for a in node.names
                if a.name.split(".")[0] == "gc" or a.name == "remediate.gcpolicy"
            ]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module in ("gc", "remediate.gcpolicy") or (
                module == "remediate" and any(a.name == "gcpolicy" for a in node.names)
            ):
                found.append(f"from {module} import ...")
        elif isinstance(node, ast.Name) and node.id == "gc":
            found.append(f"line {node.lineno}: gc")
    return found


def test_the_engine_has_no_collector_code() -> None:
    engine = Path(remediate.engine.__file__).parent
    modules = sorted(engine.rglob("*.py"))
    assert len(modules) > 10
    uses = {
        str(m.relative_to(engine)): _uses_gc(ast.parse(m.read_text(encoding="utf-8")))
        for m in modules
    }
    assert {name: found for name, found in uses.items() if found} == {}
    assert _uses_gc(ast.parse("import gc\ngc.collect()"))  # the check sees what it looks for
