"""The read-only view of earlier runs a playbook's discovery gets: what each journal says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kb_support import load, scenario

from remediate import Engine, get_playbook
from remediate.engine.history import JournalHistory, NoHistory
from remediate.errors import Refused
from remediate.testing import apply_confirmed


def test_a_finished_run_is_read_with_its_selection_and_its_changes(engine: Engine) -> None:
    doc = scenario("kb278447", 2)
    done = apply_confirmed(engine, get_playbook("kb278447"), load(doc), {})
    [run] = JournalHistory(engine.store).runs("kb278447")
    assert run.run_id == done.run_id and run.finished
    assert run.selection == done.selection_json()
    assert {(r.step, r.target) for r in done.changes} == set(run.applied)
    assert list(JournalHistory(engine.store).runs("kb842101")) == []
    assert list(NoHistory().runs("kb278447")) == []


def test_a_run_cut_off_after_some_changes_is_unfinished(engine: Engine) -> None:
    done = apply_confirmed(engine, get_playbook("kb278447"), load(scenario("kb278447", 2)), {})
    assert done.run_dir is not None
    journal = Path(done.run_dir) / "journal.jsonl"
    lines = journal.read_text(encoding="utf-8").splitlines()
    first_applied = next(i for i, line in enumerate(lines) if '"step.applied"' in line)
    journal.write_text(
        "\n".join(lines[: first_applied + 1]) + '\n{"event": "step.app', encoding="utf-8"
    )
    [run] = JournalHistory(engine.store).runs("kb278447")
    assert not run.finished
    assert run.applied == {
        (json.loads(lines[first_applied])["step"], json.loads(lines[first_applied])["target"])
    }


def test_a_run_that_changed_nothing_is_not_history(engine: Engine) -> None:
    """A refused run (no --yes) and a run with nothing to do leave nothing to respect."""
    playbook, world = get_playbook("kb278447"), load(scenario("kb278447", 2))
    with pytest.raises(Refused):
        engine.apply(playbook, world, {}).raise_for_stop()
    assert list(engine.store.run_ids())  # the refused run has a journal
    assert list(JournalHistory(engine.store).runs("kb278447")) == []
    apply_confirmed(engine, playbook, world, {})
    apply_confirmed(engine, playbook, world, {})  # nothing left to do
    assert len(list(JournalHistory(engine.store).runs("kb278447"))) == 1
