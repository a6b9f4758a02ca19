"""kb278447 over generated worlds, run again and again: nobody is ever connected to a mailbox
that is neither the one he was on nor the original the world says is his, and no item is lost or
moved out of its owner's reach, whether the runs share a state directory (history) or not (a
snapshot planned elsewhere), with or without the failed upgrade's window."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kb_support import Doc, expected, live_objects, load, mailbox_guid, mailboxes, snapshot

from remediate import Engine, get_playbook
from remediate.engine.runner import EXIT_DONE
from remediate.fakes.scenarios import KB278447_CASES, KB278447_WINDOW, VERSIONS, kb278447
from remediate.testing import apply_confirmed

PLAYBOOK = get_playbook("kb278447")


def originals(doc: Doc) -> dict[str, str]:
    """Each user's original mailbox, as the world was built (not as any playbook reads it)."""
    found = {case["user"]: case["original"] for case in expected(doc)["affected"]}
    for case in expected(doc).get("cases", {}).values():
        if "original" in case:
            found[case["user"]] = case["original"]
    return found


def connections(doc: Doc) -> dict[str, str | None]:
    return {
        guid: mailbox_guid(entry)
        for guid, entry in live_objects(doc).items()
        if entry["object_class"] == "user"
    }


def contents(doc: Doc) -> dict[str, set[str]]:
    return {
        guid: {item["id"] for item in home.box["items"]} for guid, home in mailboxes(doc).items()
    }


@dataclass(frozen=True)
class Trial:
    size: int
    seed: int
    version: str
    cases: tuple[str, ...]
    window: bool  # the operator gives the failed upgrade's window
    shared_history: bool  # the runs share a state directory (else: each starts afresh)
    runs: int


TRIALS = st.builds(
    Trial,
    size=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    version=st.sampled_from(VERSIONS),
    cases=st.sets(st.sampled_from(KB278447_CASES)).map(lambda chosen: tuple(sorted(chosen))),
    window=st.booleans(),
    shared_history=st.booleans(),
    runs=st.integers(2, 3),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trial=TRIALS)
def test_no_run_takes_a_mailbox_that_is_not_his_or_an_item_out_of_his_reach(trial: Trial) -> None:
    doc: Doc = kb278447(trial.size, trial.seed, version=trial.version, cases=trial.cases)
    world = load(doc)
    params = dict(KB278447_WINDOW) if trial.window else {}
    theirs = originals(doc)
    with tempfile.TemporaryDirectory() as state:
        for number in range(trial.runs):
            before = snapshot(world)
            where = "shared" if trial.shared_history else str(number)
            engine = Engine(state_dir=Path(state) / where)
            result = apply_confirmed(engine, PLAYBOOK, world, params)
            assert result.state == "done", result.error
            after = snapshot(world)
            was, now = connections(before), connections(after)
            for user, mailbox in now.items():
                assert mailbox in (was[user], theirs.get(user)), (number, user)
            held_before, held_after = contents(before), contents(after)
            assert set().union(*held_before.values()) <= set().union(*held_after.values())
            for user, mailbox in was.items():
                if mailbox in held_before:  # his mail follows him to the mailbox he is on now
                    home = now[user]
                    assert home in held_after, (number, user)
                    assert held_before[mailbox] <= held_after[home], (number, user)
            if number:
                assert (result.exit_code, result.changes) == (EXIT_DONE, []), number
