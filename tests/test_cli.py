"""The command line, as an operator and a script use it: commands, output formats, exit codes,
error messages, safety gates, runs and resume.

Mostly in-process (``main(argv)`` with capsys) for speed; a few real subprocesses prove that
``python -m remediate`` and the ``remediate`` console script work. The interactive prompt at a
real terminal is in test_cli_terminal.py.
"""

from __future__ import annotations

import csv
import functools
import gc
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token
from rich.console import Console

import remediate.cli.main as cli
from remediate import Engine, get_playbook
from remediate.cli.main import main
from remediate.cli.render import render_markdown, render_text, value_text
from remediate.engine.changes import ChangeRecord, Finding, Impact
from remediate.engine.runner import RunResult
from remediate.fakes import FakeWorld, load_world, world_to_json
from remediate.fakes.scenarios import (
    KB842101_CREATED_AFTER,
    KB842101_CREATED_BEFORE,
    KB842101_OU,
)

Json = dict[str, Any]
SIZE = 12
SEED = 5
CHANGE_KEYS = {"step", "target", "label", "endpoint", "impact", "action", "before", "after"}
RESULT_KEYS = {
    "format", "mode", "playbook", "state", "exit_code", "run_id", "run_dir", "parameters",
    "selection_summary", "selection", "findings", "manual_actions", "warnings", "skipped",
    "drifted", "changes", "error",
}  # fmt: skip
KB842101_STEPS = [
    ("export-mail", "reversible"),
    ("delete-ad-user", "destructive"),
    ("remove-exchange-attributes", "disruptive"),  # only for accounts kept (mailbox_only)
    ("wait-for-replication", "read"),
    ("run-cleanup-agent", "reversible"),
    ("purge-mailbox", "destructive"),
    ("verify", "read"),
]
SCOPE = [
    "-p", f"ou={KB842101_OU}",
    "-p", f"created_after={KB842101_CREATED_AFTER}",
    "-p", f"created_before={KB842101_CREATED_BEFORE}",
]  # fmt: skip


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Json:
        data: Json = json.loads(self.out)
        return data


pytestmark = pytest.mark.usefixtures("command_line")


class Run(Protocol):
    def __call__(self, *argv: str | Path) -> Ran: ...


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*argv: str | Path) -> Ran:
        capsys.readouterr()
        code = main([str(arg) for arg in argv])
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


def scenario(
    run: Run, out: Path, name: str = "kb842101", size: int = SIZE, seed: int = SEED
) -> Path:
    ran = run("scenario", name, "--size", str(size), "--seed", str(seed), "--out", out)
    assert ran.code == 0, ran.err
    assert f"wrote {out}" in ran.err
    return out


@pytest.fixture
def broken(run: Run, tmp_path: Path) -> Path:
    """A kb842101 world of SIZE users, made by the CLI."""
    return scenario(run, tmp_path / "broken.json")


def plan_json(run: Run, world: Path, *extra: str) -> Json:
    ran = run("-q", "plan", "kb842101", "--world", world, "--format", "json", *extra)
    assert ran.code in (0, 2), ran.err
    data = ran.json()
    assert data["exit_code"] == ran.code
    return data


def runs_json(run: Run) -> list[Json]:
    ran = run("runs", "--format", "json")
    assert ran.code == 0, ran.err
    rows: list[Json] = json.loads(ran.out)
    return rows


def world_json(path: Path) -> object:
    return world_to_json(load_world(path))


def yes(command: str) -> list[str]:
    """``--yes`` where the command takes it: a refusal must not hide the error under test."""
    return ["--yes"] if command == "apply" else []


def error_lines(err: str) -> list[str]:
    """The CLI's own messages on stderr (not the JSON event lines)."""
    return [line for line in err.splitlines() if not line.startswith("{")]


# -- list, show ---------------------------------------------------------------------------------


def test_list_names_both_playbooks(run: Run) -> None:
    ran = run("list")
    assert ran.code == 0
    rows = [line.split("\t") for line in ran.out.splitlines()]
    assert [name for name, _ in rows] == ["kb842101", "kb278447"]
    titles = dict(rows)
    assert "cancelled" in titles["kb842101"]
    assert "5.5" in titles["kb278447"]


def test_show_lists_parameters_and_steps_with_impacts(run: Run) -> None:
    ran = run("show", "kb842101")
    assert ran.code == 0
    assert ran.out.startswith("kb842101: ")
    assert "https://support.microsoft.com/kb/842101" in ran.out
    parameters = re.findall(r"^\s+-p (\w+)=\S+\n\s+(.+) \((.+)\)$", ran.out, flags=re.MULTILINE)
    assert [name for name, _, _ in parameters] == [
        "ou",
        "created_after",
        "created_before",
        "users",
        "mailbox_only",
        "account_list",
    ]
    assert all(help_text.strip() for _, help_text, _ in parameters)
    # which are required, and what applies when one is not given
    assert [need for _, _, need in parameters] == [
        "required: ou or users",
        "required: always",
        "required: always",
        "required: ou or users",
        "default: false",
        "default: none",
    ]
    steps = re.findall(r"^\s+(\d+)\. (\S+) \[(\w+)\] \S", ran.out, flags=re.MULTILINE)
    assert [(name, impact) for _, name, impact in steps] == KB842101_STEPS
    assert [int(number) for number, _, _ in steps] == list(range(1, len(KB842101_STEPS) + 1))


def test_show_lists_every_step_a_plan_can_run_and_when(run: Run, tmp_path: Path) -> None:
    shown = run("show", "kb278447").out
    steps = re.findall(r"^\s+\d+\. (\S+) \[", shown, flags=re.MULTILINE)
    assert "max_blank_items=100" in shown and "(default: 100)" in shown
    assert "only for Exchange 2000 stores" in shown
    # every step id of a plan that purges, on Exchange 2000 (where the cleanup agent runs
    # again after the reconnect), is listed
    world = scenario(run, tmp_path / "e2000.json", "kb278447", size=3)
    data: dict[str, Any] = world_to_json(load_world(world))
    for server in data["exchange"]["servers"]:
        server["version"] = "2000"
    world.write_text(json.dumps(data), encoding="utf-8")
    ran = run("plan", "kb278447", "--world", world, "-p", "purge_blank=true", "--format", "json")
    planned = ran.json()
    assert planned["changes"], (planned["error"], ran.err)
    assert "run-cleanup-agent-after-reconnect" in {c["step"] for c in planned["changes"]}
    assert {change["step"] for change in planned["changes"]} <= set(steps)


def test_show_unknown_playbook_names_the_known_ones(run: Run) -> None:
    ran = run("show", "kb999")
    assert ran.code == 1
    assert ran.out == ""
    assert "kb999" in ran.err
    assert "kb842101" in ran.err
    assert "kb278447" in ran.err


# -- scenario -----------------------------------------------------------------------------------


def test_scenario_writes_a_loadable_world_recording_its_parameters(run: Run, broken: Path) -> None:
    world = load_world(broken)
    assert isinstance(world, FakeWorld)
    assert world.scenario is not None
    assert world.scenario["name"] == "kb842101"
    assert world.scenario["size"] == SIZE
    assert world.scenario["seed"] == SEED
    assert world.scenario["parameters"] == {
        "ou": KB842101_OU,
        "created_after": KB842101_CREATED_AFTER,
        "created_before": KB842101_CREATED_BEFORE,
    }
    users = [
        e
        for e in world_json_dict(broken)["directory"]["objects"]
        if e["object_class"] == "user" and e["dn"].endswith("," + KB842101_OU)
    ]
    assert len(users) >= SIZE


def world_json_dict(path: Path) -> Json:
    data: Json = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("name", ["kb842101", "kb278447"])
def test_scenario_is_deterministic(run: Run, tmp_path: Path, name: str) -> None:
    first = scenario(run, tmp_path / "a.json", name, seed=9)
    second = scenario(run, tmp_path / "b.json", name, seed=9)
    other = scenario(run, tmp_path / "c.json", name, seed=10)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_scenario_version(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "v.json"
    ran = run("scenario", "kb278447", "--size", "3", "--version", "2010", "--out", out)
    assert ran.code == 0, ran.err
    data = world_json_dict(out)
    assert {server["version"] for server in data["exchange"]["servers"]} == {"2010"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["kb999"], ["kb999", "kb842101", "kb278447"]),
        (["kb842101", "--version", "2005"], ["2005", "2000", "2003", "2019"]),
        (["kb842101", "--size", "0"], ["--size", "at least 1"]),
        (["kb842101", "--size", "-4"], ["--size", "at least 1"]),
        (["kb842101", "--size", "many"], ["--size", "many"]),
    ],
)
def test_scenario_bad_input_exits_1_and_writes_nothing(
    run: Run, tmp_path: Path, argv: list[str], expected: list[str]
) -> None:
    out = tmp_path / "x.json"
    ran = run("scenario", *argv, "--out", out)
    assert ran.code == 1
    for text in expected:
        assert text in ran.err
    assert not out.exists()
    assert "Traceback" not in ran.err


def test_scenario_out_not_writable_is_an_error_naming_the_file(run: Run, tmp_path: Path) -> None:
    ran = run("scenario", "kb842101", "--size", "2", "--out", tmp_path)  # a directory
    assert ran.code == 1
    assert ran.err.strip() == f"error: {tmp_path}: Is a directory"


# -- plan ---------------------------------------------------------------------------------------


def test_plan_json_lists_every_change(run: Run, broken: Path, state_dir: Path) -> None:
    data = plan_json(run, broken)
    assert set(data) == RESULT_KEYS
    assert data["format"] == "remediate.result/1"
    assert (data["mode"], data["state"], data["exit_code"]) == ("plan", "pending", 2)
    assert data["run_id"] is None
    assert data["error"] is None
    changes = data["changes"]
    assert changes
    for change in changes:
        assert set(change) == CHANGE_KEYS
        assert change["before"] != change["after"]
    counts = Counter(change["step"] for change in changes)
    assert counts["delete-ad-user"] == SIZE == data["selection_summary"]["users"]
    assert counts["purge-mailbox"] == data["selection_summary"]["mailboxes"]
    assert counts["export-mail"] == data["selection_summary"]["mailboxes_with_items"]
    impacts = dict(KB842101_STEPS)
    assert all(change["impact"] == impacts[change["step"]] for change in changes)
    assert len({(change["step"], change["target"]) for change in changes}) == len(changes)
    # the same as the library's plan
    library = Engine(state_dir=state_dir).plan(
        get_playbook("kb842101"), load_world(broken), data["parameters"]
    )
    assert data["changes"] == library.to_json()["changes"]
    assert not (state_dir / "runs").exists() or not list((state_dir / "runs").iterdir())


def test_a_command_keeps_its_world_from_the_cyclic_collector_and_hands_it_back(
    run: Run, broken: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen: list[int] = []
    real_freeze = gc.freeze

    def freeze() -> None:
        real_freeze()
        frozen.append(gc.get_freeze_count())

    monkeypatch.setattr(gc, "freeze", freeze)
    plan_json(run, broken)
    assert frozen and frozen[0] > 0  # the loaded world among what was frozen
    assert gc.get_freeze_count() == 0


def test_plan_text_shows_each_change_on_one_line(run: Run, broken: Path) -> None:
    changes = plan_json(run, broken)["changes"]
    ran = run("-q", "plan", "kb842101", "--world", broken)
    assert ran.code == 2
    lines = ran.out.splitlines()
    assert lines[0] == "Plan kb842101: pending"
    assert lines[1].startswith(f"Selected: {SIZE} users, ")
    for step, count in Counter(change["step"] for change in changes).items():
        impact = dict(KB842101_STEPS)[step]
        assert any(line.startswith(f"{step} ({impact}): {count} change(s)") for line in lines)
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]] for line in lines if line.startswith("│")
    ]
    assert rows == [
        [c["label"], c["action"], value_text(c["before"]), value_text(c["after"])] for c in changes
    ]
    assert "manual action: On EXCH01 open Exchange System Manager" in ran.out


def test_plan_markdown_renders_every_value_as_it_is(run: Run, tmp_path: Path) -> None:
    """Rendered by a CommonMark parser with GFM tables: every cell reads exactly the label and
    values, hostile names (``*()\\``, backticks, ``<Angle>``, ``$(whoami)``) included."""
    world = scenario(run, tmp_path / "hostile.json", size=16, seed=3)
    data = plan_json(run, world)
    ran = run("-q", "plan", "kb842101", "--world", world, "--format", "markdown")
    assert ran.code == 2
    tables = markdown_tables(ran.out)
    header = dict(tables.pop("Plan kb842101: pending"))  # the ticket's header
    assert header["Organisation"] == "corp.example"
    assert header["Expected duration"].startswith("about ")
    assert tables.pop("Expected duration")[0] == ["step", "expected", "at most", "why"]
    summary = tables.pop("Changes")
    assert summary[0] == ["step", "impact", "changes"]
    selected = tables.pop("Scope")  # per user: when created, why selected
    assert selected[0] == ["user", "created", "why selected"]
    assert selected[1:] == [
        [user["dn"], user["when_created"], user["reason"]] for user in data["selection"]["users"]
    ]
    counts = Counter(change["step"] for change in data["changes"])
    impacts = {change["step"]: change["impact"] for change in data["changes"]}
    assert summary[1:] == [[step, impacts[step], str(count)] for step, count in counts.items()]
    assert list(tables) == list(counts)
    for step, rows in tables.items():
        assert rows[0] == ["target", "action", "before", "after"]
        assert rows[1:] == [
            [c["label"], c["action"], value_text(c["before"]), value_text(c["after"])]
            for c in data["changes"]
            if c["step"] == step
        ]
    labels = "".join(change["label"] for change in data["changes"])
    for hostile in (
        "*()\\",
        "`whoami`",
        "\\#Hash\\+",
        "\\<Angle\\>",
        "$(whoami)",
        "O'Brien\\,",
        '\\"Smitty\\"',
    ):
        assert hostile in labels
    headings = markdown_headings(ran.out)
    assert headings[0] == "Plan kb842101: pending"
    assert "Manual actions" in headings


def markdown_tokens(text: str) -> list[Token]:
    return MarkdownIt("commonmark", {"html": True}).enable("table").parse(text)


def inline_text(token: Token) -> str:
    """The text of an inline token; anything but plain text (emphasis, code, HTML, links)
    means the Markdown changed the value."""
    kinds = {child.type for child in token.children or []}
    assert kinds <= {"text"}, (token.content, kinds)
    return "".join(child.content for child in token.children or [])


def markdown_headings(text: str) -> list[str]:
    tokens = markdown_tokens(text)
    return [inline_text(tokens[i + 1]) for i, t in enumerate(tokens) if t.type == "heading_open"]


def markdown_tables(text: str) -> dict[str, list[list[str]]]:
    """Each table under the heading before it: rows of cell texts, header first."""
    tables: dict[str, list[list[str]]] = {}
    heading, rows, row = "", list[list[str]](), list[str]()
    tokens = markdown_tokens(text)
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            heading = inline_text(tokens[index + 1])
        elif token.type == "table_open":
            rows = []
        elif token.type == "tr_open":
            row = []
        elif token.type in ("th_open", "td_open"):
            row.append(inline_text(tokens[index + 1]))
        elif token.type == "tr_close":
            rows.append(row)
        elif token.type == "table_close":
            assert heading not in tables
            tables[heading] = rows
    return tables


def test_render_never_reads_names_as_markup() -> None:
    """Square brackets are legal in AD names: rich must not eat ``[bold]`` or choke on
    ``[/]``; Markdown must not read ``*``, ``_``, ``<b>`` or ``|``."""
    labels = [
        "CN=Contractor [bold]x[/bold],DC=corp",
        "CN=a[/]b,DC=corp",
        "CN=*stars* _under_ <b>html</b> a|b &amp; ~~s~~ ![i](x)#,DC=corp",
    ]
    result = RunResult(
        mode="plan",
        playbook="kb842101",
        state="pending",
        parameters={},
        findings=[Finding("ambiguous", "CN=[red]x[/]", "message [/] *here*")],
        changes=[
            ChangeRecord(
                "delete-ad-user",
                f"t{i}",
                label,
                "directory",
                Impact.DESTRUCTIVE,
                "delete",
                {"note": "[/]"},
                "deleted",
            )
            for i, label in enumerate(labels)
        ],
        manual_actions=["click [OK] then [/]"],
        error="CN=[/]: failed [x]",
        exit_code=2,
    )
    stream = io.StringIO()
    render_text(result, Console(file=stream, width=10_000, highlight=False))
    text = stream.getvalue()
    for label in labels:
        assert label in text
    for literal in (
        "ambiguous CN=[red]x[/]: message [/] *here*",
        "note=[/]",
        "manual action: click [OK] then [/]",
        "CN=[/]: failed [x]",
    ):
        assert literal in text
    tables = markdown_tables(render_markdown(result))
    assert [row[0] for row in tables["delete-ad-user"][1:]] == labels
    assert [row[2] for row in tables["delete-ad-user"][1:]] == ["note=[/]"] * 3


def test_plan_on_a_repaired_world_exits_0(run: Run, broken: Path, tmp_path: Path) -> None:
    repaired = tmp_path / "repaired.json"
    assert (
        run("-q", "apply", "kb842101", "--world", broken, "--yes", "--save-world", repaired).code
        == 0
    )
    ran = run("-q", "plan", "kb842101", "--world", repaired)
    assert ran.code == 0
    assert ran.out.splitlines()[0] == "Plan kb842101: nothing-to-do"
    assert "No changes." in ran.out
    data = plan_json(run, repaired)
    assert (data["state"], data["exit_code"], data["changes"]) == ("nothing-to-do", 0, [])
    markdown = run("-q", "plan", "kb842101", "--world", repaired, "--format", "markdown")
    assert markdown.code == 0
    assert "No changes." in markdown.out


def test_plan_of_kb278447_reports_the_ambiguous_user(run: Run, tmp_path: Path) -> None:
    world = scenario(run, tmp_path / "k.json", "kb278447", size=3)
    (ambiguous,) = world_json_dict(world)["scenario"]["expected"]["ambiguous_guids"]
    (user,) = [e for e in world_json_dict(world)["directory"]["objects"] if e["guid"] == ambiguous]
    ran = run("-q", "plan", "kb278447", "--world", world, "--format", "json")
    assert ran.code == 2
    data = ran.json()
    assert [(f["kind"], f["target"]) for f in data["findings"]] == [("ambiguous", user["dn"])]
    assert {c["step"] for c in data["changes"]} >= {"stop-service", "reconnect-mailbox"}
    assert not any(user["dn"] in c["label"] for c in data["changes"])
    text = run("-q", "plan", "kb278447", "--world", world)
    assert f"ambiguous {user['dn']}: " in text.out
    markdown = run("-q", "plan", "kb278447", "--world", world, "--format", "markdown")
    assert "Findings (not acted on)" in markdown_headings(markdown.out)


# -- apply --------------------------------------------------------------------------------------


def test_apply_json_makes_the_planned_changes_then_nothing(
    run: Run, broken: Path, tmp_path: Path, state_dir: Path
) -> None:
    planned = plan_json(run, broken)
    out = tmp_path / "out.json"
    ran = run(
        "-q",
        "apply",
        "kb842101",
        "--world",
        broken,
        "--yes",
        "--save-world",
        out,
        "--format",
        "json",
    )
    assert ran.code == 0, ran.err
    applied = ran.json()
    assert set(applied) == RESULT_KEYS
    assert (applied["mode"], applied["state"], applied["exit_code"]) == ("apply", "done", 0)
    assert applied["error"] is None
    assert applied["changes"] == planned["changes"]
    assert applied["parameters"] == planned["parameters"]
    run_dir = Path(applied["run_dir"])
    assert run_dir == state_dir / "runs" / applied["run_id"]
    for name in ("journal.jsonl", "plan.json", "world.json"):
        assert (run_dir / name).is_file()
    assert list((run_dir / "backups" / "ad").glob("*.ldif"))
    # OUT is a valid world, the same as the run directory's, and repaired
    assert world_json(out) == world_json(run_dir / "world.json")
    assert world_json(out) != world_json(broken)
    again = run("-q", "apply", "kb842101", "--world", out, "--yes", "--format", "json")
    assert again.code == 0, again.err
    second = again.json()
    assert (second["state"], second["exit_code"], second["changes"]) == ("done", 0, [])
    assert second["run_id"] != applied["run_id"]
    text = run("-q", "apply", "kb842101", "--world", out, "--yes")
    assert text.code == 0
    assert "No changes were needed." in text.out


def test_apply_markdown_and_text_name_the_run(run: Run, broken: Path) -> None:
    ran = run("-q", "apply", "kb842101", "--world", broken, "--yes", "--format", "markdown")
    assert ran.code == 0, ran.err
    run_id = runs_json(run)[0]["run_id"]
    assert markdown_headings(ran.out)[0] == f"Apply kb842101 run {run_id}: done"
    header = dict(markdown_tables(ran.out)[f"Apply kb842101 run {run_id}: done"])
    assert header["Run directory"].endswith(run_id)
    # every change of the run, beside the ticket
    attachment = Path(header["Every change"].split(" (CSV")[0])
    assert attachment.parent.name == run_id
    rows = list(csv.DictReader(attachment.open(encoding="utf-8")))
    assert len(rows) == runs_json(run)[0]["applied"]


def test_unknown_parameter_lists_the_valid_ones(run: Run, broken: Path) -> None:
    for command in ("plan", "apply"):
        ran = run("-q", command, "kb842101", "--world", broken, "-p", "bogus=1", *yes(command))
        assert ran.code == 1
        assert ran.out == ""
        (message,) = error_lines(ran.err)
        assert "unknown parameter 'bogus'" in message
        assert (
            "valid parameters: account_list, created_after, created_before, mailbox_only, ou, users"
        ) in message
    assert runs_json(run) == []


def test_bad_value_names_the_key(run: Run, broken: Path) -> None:
    ran = run(
        "-q",
        "plan",
        "kb842101",
        "--world",
        broken,
        "-p",
        f"ou={KB842101_OU}",
        "-p",
        "created_after=yesterday",
    )
    assert ran.code == 1
    (message,) = error_lines(ran.err)
    assert message.startswith("error: ")
    assert "created_after='yesterday'" in message
    assert "ISO 8601" in message


@pytest.mark.parametrize(
    ("pair", "expected"),
    [("noequals", "is not key=value"), ("=value", "is not key=value")],
)
def test_malformed_parameter(run: Run, broken: Path, pair: str, expected: str) -> None:
    ran = run("-q", "plan", "kb842101", "--world", broken, "-p", pair)
    assert ran.code == 1
    assert expected in ran.err


def test_a_parameter_given_twice_is_an_error(run: Run, broken: Path) -> None:
    ran = run("-q", "plan", "kb842101", "--world", broken, *SCOPE, "-p", "ou=OU=Other,DC=x")
    assert ran.code == 1
    (message,) = error_lines(ran.err)
    assert "-p ou is given twice" in message


def test_kb842101_needs_a_scope_on_a_world_without_scenario_parameters(
    run: Run, broken: Path, tmp_path: Path
) -> None:
    data = world_json_dict(broken)
    del data["scenario"]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(data), encoding="utf-8")
    for command in ("plan", "apply"):
        ran = run("-q", command, "kb842101", "--world", bare, *yes(command))
        assert ran.code == 1
        (message,) = error_lines(ran.err)
        assert "needs a scope" in message
        assert "-p ou=" in message
        assert "using the parameters recorded" not in ran.err
    assert runs_json(run) == []
    # with the scope given, it works on the same world
    ran = run("-q", "plan", "kb842101", "--world", bare, *SCOPE, "--format", "json")
    assert ran.code == 2
    assert ran.json()["changes"] == plan_json(run, broken)["changes"]


def test_scenario_parameters_are_used_when_none_are_given_and_said_so(
    run: Run, broken: Path
) -> None:
    ran = run("plan", "kb842101", "--world", broken, "--format", "json")
    assert ran.code == 2
    recorded = " ".join(SCOPE)
    assert f"using the parameters recorded in the world file: {recorded}" in ran.err
    assert ran.json()["parameters"] == dict(pair.split("=", 1) for pair in SCOPE[1::2])
    # -q: the result says which parameters, nothing else does
    quiet = run("-q", "plan", "kb842101", "--world", broken, "--format", "json")
    assert quiet.err == ""
    assert quiet.json()["parameters"] == ran.json()["parameters"]
    # given parameters win, and nothing is said (users= alone lacks the window: an error)
    given = run(
        "-q", "plan", "kb842101", "--world", broken, "-p", "users=nobody", "--format", "json"
    )
    assert given.code == 1
    assert "recorded" not in given.err
    assert "whenCreated window" in given.err
    # a world of the other playbook's scenario records nothing for this one
    other = run("-q", "plan", "kb278447", "--world", broken, "--format", "json")
    assert "recorded" not in other.err


def test_an_incomplete_inventory_is_refused_naming_file_and_key(run: Run, tmp_path: Path) -> None:
    inventory = tmp_path / "corp.toml"
    inventory.write_text("[directory]\n", encoding="utf-8")
    for command in ("plan", "apply"):
        ran = run("-q", command, "kb842101", "--inventory", inventory, *SCOPE)
        assert ran.code == 1
        (message,) = error_lines(ran.err)
        assert str(inventory) in message
        assert "domain" in message


def test_no_world_is_an_error(run: Run) -> None:
    ran = run("-q", "plan", "kb842101", *SCOPE)
    assert ran.code == 1
    assert "no world given" in ran.err
    assert "--world FILE" in ran.err


def test_world_and_inventory_exclude_each_other(run: Run, broken: Path) -> None:
    ran = run("plan", "kb842101", "--world", broken, "--inventory", "x.toml")
    assert ran.code == 1
    assert "not allowed with argument" in ran.err


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda d: d["exchange"]["servers"][0].update(dc="DC9"), "$.exchange.servers[0].dc"),
        (
            lambda d: d["directory"]["objects"][3].update(guid="not-a-guid"),
            "$.directory.objects[3].guid",
        ),
        (lambda d: d.update(format="remediate.world/0"), "$.format"),
        (lambda d: d["directory"].pop("dcs"), "$.directory.dcs"),
    ],
)
def test_malformed_world_names_the_json_path(
    run: Run, broken: Path, tmp_path: Path, edit: Any, path: str
) -> None:
    data = world_json_dict(broken)
    edit(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    for command in ("plan", "apply"):
        ran = run("-q", command, "kb842101", "--world", bad, *yes(command))
        assert ran.code == 1
        (message,) = error_lines(ran.err)
        assert message.startswith(f"error: {bad}: {path}")
        assert "Traceback" not in ran.err


def test_unreadable_world_files(run: Run, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json", encoding="utf-8")
    ran = run("-q", "plan", "kb842101", "--world", garbage)
    assert ran.code == 1
    assert f"error: {garbage}: $: not valid JSON" in ran.err
    missing = tmp_path / "missing.json"
    ran = run("-q", "plan", "kb842101", "--world", missing)
    assert ran.code == 1
    assert f"error: {missing}: cannot read: No such file or directory" in ran.err


# -- safety gates -------------------------------------------------------------------------------


def test_apply_without_yes_and_without_a_terminal_is_refused(
    run: Run, broken: Path, tmp_path: Path
) -> None:
    before = broken.read_bytes()
    out = tmp_path / "out.json"
    ran = run("-q", "apply", "kb842101", "--world", broken, "--save-world", out, "--format", "json")
    assert ran.code == 3
    data = ran.json()
    assert (data["state"], data["exit_code"], data["changes"]) == ("refused", 3, [])
    assert f"delete-ad-user (destructive): {SIZE} target(s)" in data["error"]
    assert "not confirmed" in data["error"]
    assert f"delete-ad-user (destructive): {SIZE} target(s) on directory" in ran.err
    assert "--yes" in ran.err
    assert f"run {data['run_id']} refused; nothing was changed" in ran.err
    # nothing changed: the world file, the world saved, and the run's world
    assert broken.read_bytes() == before
    assert world_json(out) == world_json(broken)
    assert world_json(Path(data["run_dir"]) / "world.json") == world_json(broken)
    assert [(r["run_id"], r["state"], r["applied"]) for r in runs_json(run)] == [
        (data["run_id"], "refused", 0)
    ]
    # and such a run cannot be resumed
    resumed = run("-q", "resume", data["run_id"])
    assert resumed.code == 3
    assert "stopped before it passed its safety gates" in resumed.err


def test_apply_refused_text_says_nothing_was_made(run: Run, broken: Path) -> None:
    ran = run("-q", "apply", "kb842101", "--world", broken)
    assert ran.code == 3
    assert ran.out.splitlines()[0].endswith(": refused")
    assert "No changes were made." in ran.out
    assert "No changes were needed." not in ran.out


def test_max_deletions_refuses_a_larger_plan(run: Run, broken: Path, tmp_path: Path) -> None:
    summary = plan_json(run, broken)["selection_summary"]
    deletions = summary["users"] + summary["child_objects"] + summary["mailboxes"]
    out = tmp_path / "out.json"
    ran = run(
        "-q",
        "apply",
        "kb842101",
        "--world",
        broken,
        "--yes",
        "--max-deletions",
        "1",
        "--save-world",
        out,
        "--format",
        "json",
    )
    assert ran.code == 3
    data = ran.json()
    assert (data["state"], data["changes"]) == ("refused", [])
    assert f"deletes {deletions} objects or mailboxes, over the budget of 1" in data["error"]
    assert world_json(out) == world_json(broken)
    # a budget that fits lets it through
    exact = run(
        "-q", "apply", "kb842101", "--world", broken, "--yes", "--max-deletions", str(deletions)
    )
    assert exact.code == 0, exact.err


def test_max_deletions_must_be_a_count(run: Run, broken: Path) -> None:
    for value in ("-1", "lots"):
        ran = run("apply", "kb842101", "--world", broken, "--yes", "--max-deletions", value)
        assert ran.code == 1
        assert "--max-deletions" in ran.err
    assert runs_json(run) == []


# -- runs, resume -------------------------------------------------------------------------------


def test_runs_lists_the_runs(run: Run, broken: Path, state_dir: Path) -> None:
    empty = run("runs")
    assert empty.code == 0
    assert empty.out.strip() == f"no runs under {state_dir / 'runs'}"
    assert runs_json(run) == []
    done = run("-q", "apply", "kb842101", "--world", broken, "--yes", "--format", "json").json()
    refused = run("-q", "apply", "kb842101", "--world", broken, "--format", "json").json()
    rows = runs_json(run)
    assert [(r["run_id"], r["playbook"], r["state"]) for r in rows] == [
        (done["run_id"], "kb842101", "done"),
        (refused["run_id"], "kb842101", "refused"),
    ]
    assert rows[0]["applied"] == len(done["changes"])
    assert rows[0]["completed_steps"] == len(KB842101_STEPS) - 1  # no account kept
    assert rows[1]["applied"] == 0
    assert all(
        set(r)
        == {
            "run_id",
            "playbook",
            "started",
            "state",
            "applied",
            "failed",
            "in_doubt",
            "completed_steps",
            "source",
        }
        for r in rows
    )
    source = f"world {broken.resolve()}"
    assert rows[0]["source"] == {"kind": "world", "path": str(broken.resolve())}
    assert [r["failed"] for r in rows] == [0, 0]
    when = [str(r["started"])[:19].replace("T", " ") for r in rows]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", w) for w in when)
    text = run("runs")
    assert text.out.splitlines() == [
        "run id\tplaybook\tstarted (UTC)\tstate\tchanges\tsource",
        f"{done['run_id']}\tkb842101\t{when[0]}\tdone\t{len(done['changes'])} change(s)\t{source}",
        f"{refused['run_id']}\tkb842101\t{when[1]}\trefused\t0 change(s)\t{source}",
    ]


def test_resume_of_an_unknown_run(run: Run) -> None:
    ran = run("resume", "20990101T000000Z-kb842101-abcdef")
    assert ran.code == 1
    assert "remediate runs" in ran.err


def fail_purges_once(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The world the next ``load_world`` returns fails every purge permanently (retrying
    cannot help): the run stops after it deleted the users, before any purge."""
    loaded: list[Path] = []

    def load(path: Path | str) -> FakeWorld:
        world = load_world(path)
        if not loaded:
            world.faults.fail("exchange.purge_mailboxes", kind="permanent", times=100)
        loaded.append(Path(path))
        return world

    monkeypatch.setattr(cli, "load_world", load)
    return loaded


def test_resume_completes_a_run_that_failed_midway(
    run: Run, broken: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned = plan_json(run, broken)["changes"]
    loaded = fail_purges_once(monkeypatch)
    failed_out = tmp_path / "failed.json"
    ran = run(
        "-q",
        "apply",
        "kb842101",
        "--world",
        broken,
        "--yes",
        "--format",
        "json",
        "--save-world",
        failed_out,
    )
    assert ran.code == 1
    failed = ran.json()
    run_id, run_dir = failed["run_id"], Path(failed["run_dir"])
    assert (failed["state"], failed["exit_code"]) == ("failed", 1)
    assert "injected permanent fault" in failed["error"]
    assert "purge_mailboxes" in failed["error"]
    purges = [c for c in planned if c["step"] == "purge-mailbox"]
    assert purges
    assert failed["changes"] == [c for c in planned if c["step"] != "purge-mailbox"]
    assert failed["selection_summary"]["users"] == SIZE
    assert f"run {run_id} failed ({len(failed['changes'])} change(s) made)" in ran.err
    assert f"remediate resume {run_id}" in ran.err
    # the run directory holds the world as the failure left it
    assert world_json(run_dir / "world.json") == world_json(failed_out)
    assert [(r["run_id"], r["state"]) for r in runs_json(run)] == [(run_id, "failed")]

    out = tmp_path / "resumed.json"
    resumed = run("-q", "resume", run_id, "--format", "json", "--save-world", out)
    assert resumed.code == 0, resumed.err
    assert loaded == [broken, run_dir / "world.json"]
    done = resumed.json()
    assert (done["mode"], done["state"], done["run_id"]) == ("resume", "done", run_id)
    assert done["changes"] == purges
    assert failed["changes"] + done["changes"] == planned
    assert done["parameters"] == failed["parameters"]
    assert [(r["state"], r["applied"]) for r in runs_json(run)] == [("done", len(planned))]
    # repaired: nothing left to plan, and resuming again changes nothing
    assert plan_json(run, out)["changes"] == []
    again = run("-q", "resume", run_id)
    assert again.code == 0
    assert again.out.splitlines()[0] == f"Resume kb842101 run {run_id}: done"
    assert "No changes were needed." in again.out


def test_resume_after_ctrl_c(
    run: Run, broken: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the run deletes users: exit 1, the result says interrupted and what was
    done, stderr names the resume command; resume finishes the job."""
    planned = plan_json(run, broken)["changes"]

    def load(path: Path | str) -> FakeWorld:
        world = load_world(path)
        perform = world.faults.perform

        def interrupting(operation: str, **kwargs: Any) -> Any:
            if operation == "directory.delete":
                raise KeyboardInterrupt
            return perform(operation, **kwargs)

        monkeypatch.setattr(world.faults, "perform", interrupting)
        return world

    monkeypatch.setattr(cli, "load_world", load)
    ran = run("-q", "apply", "kb842101", "--world", broken, "--yes", "--format", "json")
    monkeypatch.setattr(cli, "load_world", load_world)
    assert ran.code == 1
    stopped = ran.json()
    assert (stopped["state"], stopped["exit_code"]) == ("interrupted", 1)
    assert stopped["changes"] == [c for c in planned if c["step"] == "export-mail"]
    run_id = stopped["run_id"]
    assert (
        f"interrupted: run {run_id} stopped ({len(stopped['changes'])} change(s) made); "
        f"continue with: remediate resume {run_id}" in ran.err
    )
    assert [(r["run_id"], r["state"]) for r in runs_json(run)] == [(run_id, "interrupted")]
    out = tmp_path / "out.json"
    resumed = run("-q", "resume", run_id, "--format", "json", "--save-world", out)
    assert resumed.code == 0, resumed.err
    assert stopped["changes"] + resumed.json()["changes"] == planned
    assert plan_json(run, out)["changes"] == []


def test_a_paused_run_says_what_to_click_and_resume_finishes_it(
    run: Run, broken: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exchange 2003 has no API for the cleanup agent: with an operator's wait of one hour
    (the stores' own pass is up to a day away) the run pauses, exit 2, naming what to click."""
    planned = plan_json(run, broken)["changes"]
    monkeypatch.setattr(cli, "Engine", functools.partial(Engine, manual_deadline_s=3600.0))
    ran = run("-q", "apply", "kb842101", "--world", broken, "--yes", "--format", "json")
    monkeypatch.setattr(cli, "Engine", Engine)
    assert ran.code == 2, ran.err
    paused = ran.json()
    run_id = paused["run_id"]
    assert (paused["state"], paused["exit_code"]) == ("paused", 2)
    steps_before = ["export-mail", "delete-ad-user", "wait-for-replication"]
    assert paused["changes"] == [c for c in planned if c["step"] in steps_before]
    (instructions,) = paused["manual_actions"]
    assert "Exchange System Manager" in instructions
    assert "Run Cleanup Agent" in instructions
    assert "run-cleanup-agent" in paused["error"]
    assert f"paused: run {run_id} waits for a manual action" in ran.err
    assert f"when it is done, continue with: remediate resume {run_id}" in ran.err
    assert [(r["run_id"], r["state"]) for r in runs_json(run)] == [(run_id, "paused")]
    out = tmp_path / "out.json"
    resumed = run("-q", "resume", run_id, "--format", "json", "--save-world", out)
    assert resumed.code == 0, resumed.err
    assert paused["changes"] + resumed.json()["changes"] == planned
    assert plan_json(run, out)["changes"] == []


def test_a_failed_run_in_text_shows_what_it_did(
    run: Run, broken: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_purges_once(monkeypatch)
    ran = run("-q", "apply", "kb842101", "--world", broken, "--yes")
    assert ran.code == 1
    (row,) = runs_json(run)
    lines = ran.out.splitlines()
    assert lines[0] == f"Apply kb842101 run {row['run_id']}: failed"
    assert any(line.startswith(f"delete-ad-user (destructive): {SIZE} change(s)") for line in lines)
    assert not any(line.startswith("purge-mailbox") for line in lines)
    assert "injected permanent fault" in lines[-2]
    assert re.match(
        rf"Apply failed: \d+ changes before it stopped \({SIZE} destructive, ", lines[-1]
    ), lines[-1]
    assert f"remediate resume {row['run_id']}" in ran.err


# -- the command line itself --------------------------------------------------------------------


def test_usage_errors_exit_1_not_2(run: Run, broken: Path) -> None:
    """2 means "changes pending": a script must never read a typo as that."""
    for argv in (["plan", "kb842101", "--world", broken, "--bogus"], ["frobnicate"], []):
        ran = run(*argv)
        assert ran.code == 1, argv
        assert "usage: remediate" in ran.err


def test_help_exits_0(run: Run) -> None:
    ran = run("--help")
    assert ran.code == 0
    for command in ("list", "show", "plan", "apply", "resume", "runs", "scenario"):
        assert command in ran.out
    assert "exit codes" in ran.out


def test_global_options_work_after_the_command(run: Run, broken: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    ran = run(
        "apply",
        "kb842101",
        "--world",
        broken,
        "--yes",
        "-q",
        "--state-dir",
        elsewhere,
        "--log-format",
        "json",
        "--format",
        "json",
    )
    assert ran.code == 0, ran.err
    assert Path(ran.json()["run_dir"]).parent == elsewhere / "runs"
    assert "step.started" not in ran.err  # -q: warnings and errors only
    before = run("--state-dir", elsewhere, "runs", "--format", "json")
    assert len(json.loads(before.out)) == 1


def test_events_go_to_stderr_as_json_lines(run: Run, broken: Path) -> None:
    ran = run("plan", "kb842101", "--world", broken, "--log-format", "json", "--format", "json")
    assert ran.code == 2
    json.loads(ran.out)  # stdout holds only the result
    events = [json.loads(line) for line in ran.err.splitlines() if line.startswith("{")]
    assert {"step.started", "step.completed"} <= {event["event"] for event in events}


# -- real processes -----------------------------------------------------------------------------


def subprocess_env(state_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["REMEDIATE_STATE_DIR"] = str(state_dir)
    env.pop("COLUMNS", None)
    return env


def test_python_dash_m_remediate(tmp_path: Path, state_dir: Path) -> None:
    env = subprocess_env(state_dir)
    world = tmp_path / "w.json"

    def remediate(*argv: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "remediate", "-q", *map(str, argv)],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    made = remediate("scenario", "kb842101", "--size", "4", "--out", world)
    assert made.returncode == 0, made.stderr
    planned = remediate("plan", "kb842101", "--world", world, "--format", "json")
    assert planned.returncode == 2, planned.stderr
    before = world.read_bytes()
    refused = remediate("apply", "kb842101", "--world", world, "--save-world", "r.json")
    assert refused.returncode == 3, refused.stderr
    assert "not confirmed" in refused.stderr
    assert world.read_bytes() == before
    assert world_json(tmp_path / "r.json") == world_json(world)
    applied = remediate(
        "apply",
        "kb842101",
        "--world",
        world,
        "--yes",
        "--format",
        "json",
        "--save-world",
        "out.json",
    )
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["changes"] == json.loads(planned.stdout)["changes"]
    again = remediate("plan", "kb842101", "--world", "out.json")
    assert again.returncode == 0, again.stderr
    usage = remediate("plan")
    assert usage.returncode == 1
    assert "usage:" in usage.stderr


def test_console_script(tmp_path: Path, state_dir: Path) -> None:
    script = shutil.which("remediate", path=str(Path(sys.executable).parent))
    assert script is not None, "the remediate console script is not installed"
    ran = subprocess.run(
        [script, "list"],
        env=subprocess_env(state_dir),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("kb842101\t")
    runs = subprocess.run(
        [script, "runs", "--format", "json"],
        env=subprocess_env(state_dir),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert runs.returncode == 0
    assert json.loads(runs.stdout) == []


def test_plan_output_into_a_closed_pipe_is_quiet(tmp_path: Path, state_dir: Path) -> None:
    world = tmp_path / "w.json"
    env = subprocess_env(state_dir)
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "remediate",
            "scenario",
            "kb842101",
            "--size",
            "300",
            "--out",
            str(world),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    pipeline = subprocess.run(
        f"{sys.executable} -m remediate -q plan kb842101 --world {world} --format json"
        " | head -c 10 >/dev/null; exit ${PIPESTATUS[0]}",
        shell=True,
        executable="/bin/bash",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in pipeline.stderr
    assert "BrokenPipe" not in pipeline.stderr
    assert "Exception ignored" not in pipeline.stderr
