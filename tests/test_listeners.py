"""Listeners: a program hears a run through typed hooks (``RunListener``), called with the
values the engine has (a ``ChangeRecord``, a count, a step's id), in the journal's order and
before the journal writes each event down; the command line listens that way and never picks
an event dict apart."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

from kb_support import Doc, journal, load, parameters, run_dir, scenario

from remediate import Engine, get_playbook
from remediate.engine.changes import ChangeRecord
from remediate.engine.listener import RunInfo, RunListener
from remediate.testing import apply_confirmed

CLI = Path(__file__).parent.parent / "remediate" / "cli"

# The journal's event for each hook.
KINDS = {
    "on_run_started": "run.started",
    "on_discovered": "run.discovered",
    "on_planned": "run.planned",
    "on_approved": "run.approved",
    "on_resumed": "run.resumed",
    "on_step_started": "step.started",
    "on_change": "step.applied",
    "on_batch_finished": "step.verified",
    "on_step_completed": "step.completed",
    "on_manual_action": "step.manual",
    "on_paused": "run.paused",
    "on_run_finished": "run.finished",
}


class Heard(RunListener):
    """What a listener is told, as (hook, values)."""

    def __init__(self) -> None:
        self.runs: list[RunInfo] = []
        self.hooks: list[str] = []
        self.changes: list[ChangeRecord] = []
        self.steps: dict[str, int] = {}
        self.summary: Mapping[str, int] = {}
        self.finished: tuple[str, str | None] | None = None

    def on_run_opened(self, run: RunInfo) -> None:
        self.runs.append(run)

    def on_run_started(self, run: RunInfo) -> None:
        self.hooks.append("on_run_started")

    def on_discovered(self, summary: Mapping[str, int]) -> None:
        self.hooks.append("on_discovered")
        self.summary = summary

    def on_planned(self, changes: int) -> None:
        self.hooks.append("on_planned")

    def on_approved(self, changes: int) -> None:
        self.hooks.append("on_approved")

    def on_step_started(self, step: str, targets: int) -> None:
        self.hooks.append("on_step_started")
        self.steps[step] = targets

    def on_change(self, record: ChangeRecord) -> None:
        self.hooks.append("on_change")
        self.changes.append(record)

    def on_batch_finished(self, step: str, endpoint: str, changes: int) -> None:
        self.hooks.append("on_batch_finished")

    def on_manual_action(self, step: str, instructions: str) -> None:
        self.hooks.append("on_manual_action")

    def on_paused(self, step: str, instructions: str) -> None:
        self.hooks.append("on_paused")

    def on_step_completed(self, step: str) -> None:
        self.hooks.append("on_step_completed")

    def on_run_finished(self, state: str, error: str | None) -> None:
        self.hooks.append("on_run_finished")
        self.finished = (state, error)


def rows(records: list[ChangeRecord]) -> list[tuple[object, ...]]:
    return [(r.step, r.target, r.action, r.before, r.after) for r in records]


def kb842101() -> Doc:
    return scenario("kb842101", 3, version="2016")


def test_a_plan_is_heard_as_typed_values(state_dir: Path) -> None:
    doc = kb842101()
    heard = Heard()
    engine = Engine(state_dir=state_dir, listeners=(heard,))

    plan = engine.plan(get_playbook("kb842101"), load(doc), parameters(doc))

    assert heard.runs == [RunInfo(None, "kb842101", "plan")]
    assert heard.hooks[0] == "on_run_started"
    assert heard.finished == ("pending", None) and plan.state == "pending"
    assert all(isinstance(record, ChangeRecord) for record in heard.changes)
    assert rows(heard.changes) == rows(list(plan.changes))
    assert all(isinstance(count, int) for count in heard.steps.values())


def test_an_apply_is_heard_in_the_journal_order_before_the_journal_writes_it(
    state_dir: Path,
) -> None:
    doc = kb842101()

    class Listener(Heard):
        def on_step_completed(self, step: str) -> None:
            super().on_step_completed(step)
            # Told before the journal says so: a listener's own record is never behind it.
            [run] = (state_dir / "runs").iterdir()
            assert not [
                line
                for line in journal(run)
                if line["event"] == "step.completed" and line["step"] == step
            ]

    heard = Listener()
    engine = Engine(state_dir=state_dir, listeners=(heard,))

    result = apply_confirmed(engine, get_playbook("kb842101"), load(doc), parameters(doc))

    assert [run.mode for run in heard.runs] == ["apply"]
    assert heard.runs[0].run_id == result.run_id
    written = [
        line["event"] for line in journal(run_dir(result)) if line["event"] in KINDS.values()
    ]
    assert [KINDS[hook] for hook in heard.hooks] == written
    assert rows(heard.changes) == rows(list(result.changes))
    assert dict(heard.summary) == dict(result.selection_summary)
    assert heard.finished == ("done", None)


def _listener_classes() -> list[tuple[Path, ast.ClassDef]]:
    found = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name) and base.id == "RunListener" for base in node.bases
            ):
                found.append((path, node))
    return found


def _names_a_field(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def test_the_command_line_listens_to_typed_hooks_not_event_dicts() -> None:
    """No CLI module takes the engine's dict events (a ``Subscriber``), and no listener of it
    reads a value out of a record by key (``record["step"]``, ``record.get("event")``)."""
    listeners = _listener_classes()
    assert {node.name for _, node in listeners} >= {
        "StepLines",
        "ProgressBars",
        "RunLog",
        "DurableWorld",
    }
    by_key = [
        f"{path.name}:{inner.lineno} in {node.name}"
        for path, node in listeners
        for inner in ast.walk(node)
        if (isinstance(inner, ast.Subscript) and _names_a_field(inner.slice))
        or (
            isinstance(inner, ast.Call)
            and isinstance(inner.func, ast.Attribute)
            and inner.func.attr == "get"
            and inner.args
            and _names_a_field(inner.args[0])
        )
    ]
    assert by_key == []
    subscribing = [
        f"{path.name}:{node.lineno}"
        for path in sorted(CLI.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom)
        and node.module == "remediate.engine.events"
        and any(alias.name == "Subscriber" for alias in node.names)
    ]
    assert subscribing == []
