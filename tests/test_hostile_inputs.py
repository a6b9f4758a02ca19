"""Every file read from disk (journals, plans, worlds, inventories) and what is typed at a prompt,
damaged or hostile: one line on stderr naming the file and the place in it, exit 1 (3 for a
plan that was altered), never a traceback; one damaged run does not hide the others."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from run_support import Case, load

from remediate.cli.main import main
from remediate.engine.planfile import seal
from remediate.fakes import save_world

CASE = Case("kb842101", "2016")


pytestmark = pytest.mark.usefixtures("quiet")


@pytest.fixture
def world_file(tmp_path: Path) -> Path:
    path = tmp_path / "world.json"
    save_world(load(CASE.document()), path)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def one_line_error(err: str, *names: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


# -- journals -------------------------------------------------------------------------------------


def two_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path, world_file: Path) -> list[Path]:
    state = str(tmp_path / "state")
    for _ in range(2):
        assert (
            run(
                capsys,
                "--state-dir",
                state,
                "apply",
                "kb842101",
                "--world",
                str(world_file),
                "--yes",
            )[0]
            == 0
        )
    return sorted((tmp_path / "state" / "runs").iterdir())


@pytest.mark.parametrize(
    "damage",
    [
        b"\xff\xfe not utf-8 \x80\n",
        b'{"event": "step.applied", "event": "run.finished"}\n',
        b'{"event": "step.applied", "label": "\\ud800"}\n',
    ],
    ids=["invalid-utf8", "duplicate-key", "lone-surrogate"],
)
def test_a_journal_damaged_in_the_middle_is_named_and_runs_still_lists_every_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, world_file: Path, damage: bytes
) -> None:
    damaged, healthy = two_runs(capsys, tmp_path, world_file)
    journal = damaged / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join([*lines[:3], damage, *lines[3:]]))
    state = str(tmp_path / "state")

    code, _, err = run(capsys, "--state-dir", state, "show-run", damaged.name)
    assert code == 1
    one_line_error(err, str(journal), "line 4")

    code, out, err = run(capsys, "--state-dir", state, "runs", "--format", "json")
    assert code == 0
    rows = {row["run_id"]: row["state"] for row in json.loads(out)}
    assert rows == {damaged.name: "damaged", healthy.name: "done"}
    assert str(journal) in err and "line 4" in err


# -- world files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (
            lambda text: text.replace(
                '"protected": false', '"protected": true, "protected": false', 1
            ),
            "line ",
        ),
        (
            lambda text: text.replace('"displayName": "', '"displayName": "\\ud800', 1),
            ".attributes.displayName",
        ),
        (
            lambda text: text.replace(
                '"replication_delay_s": 0', '"replication_delay_s": ' + "9" * 5000, 1
            ),
            "$",
        ),
    ],
    ids=["duplicate-key", "lone-surrogate", "huge-integer"],
)
def test_a_hostile_world_file_is_refused_naming_the_file_and_the_place(
    capsys: pytest.CaptureFixture[str],
    world_file: Path,
    tmp_path: Path,
    edit: Callable[[str], str],
    where: str,
) -> None:
    text = world_file.read_text("utf-8")
    changed = edit(text)
    assert changed != text
    world_file.write_text(changed, "utf-8")

    code, _, err = run(
        capsys,
        "--state-dir",
        str(tmp_path / "state"),
        "apply",
        "kb842101",
        "--world",
        str(world_file),
        "--yes",
    )

    assert code == 1
    one_line_error(err, str(world_file), where)
    assert not (tmp_path / "state" / "runs").exists()


# -- plans ----------------------------------------------------------------------------------------


def saved_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path, world_file: Path) -> Path:
    plan = tmp_path / "plan.json"
    assert (
        run(
            capsys,
            "--state-dir",
            str(tmp_path / "state"),
            "plan",
            "kb842101",
            "--world",
            str(world_file),
            "--out",
            str(plan),
        )[0]
        == 2
    )
    return plan


def resealed(plan: Path, edit: Callable[[dict[str, object]], None]) -> None:
    """Edit the plan and compute its hash again, as someone who means it would."""
    data = json.loads(plan.read_text("utf-8"))
    data.pop("sha256")
    signature = data.pop("hmac_sha256", None)
    edit(data)
    sealed = {**data, "sha256": seal(data)}
    if signature is not None:
        sealed["hmac_sha256"] = signature  # the signature cannot be made again without the key
    plan.write_text(json.dumps(sealed), "utf-8")


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda plan: plan.update(playbook="kb278447"), "playbook kb278447"),
        (lambda plan: plan.update(selection={"users": "everyone"}), "selection"),
        (
            lambda plan: plan.update(
                options={"allow_protected": False, "replication_timeout_s": -5}
            ),
            "options.replication_timeout_s",
        ),
        (lambda plan: plan.update(options={"allow_protected": "yes"}), "options.allow_protected"),
        (lambda plan: plan.update(parameters={"ou": 5}), "parameters.ou"),
        (lambda plan: plan.update(changes="all"), "changes"),
    ],
    ids=[
        "switched-playbook",
        "mangled-selection",
        "negative-timeout",
        "option-not-bool",
        "parameter-not-text",
        "changes-not-a-list",
    ],
)
def test_a_plan_edited_and_resealed_is_refused_naming_what_is_wrong(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    world_file: Path,
    edit: Callable[[dict[str, object]], None],
    named: str,
) -> None:
    plan = saved_plan(capsys, tmp_path, world_file)
    resealed(plan, edit)

    code, _, err = run(capsys, "--state-dir", str(tmp_path / "state"), "apply", str(plan), "--yes")

    assert code == 1
    one_line_error(err, named)
    assert not (tmp_path / "state" / "runs").exists()


def test_a_plan_with_a_key_given_twice_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, world_file: Path
) -> None:
    plan = saved_plan(capsys, tmp_path, world_file)
    text = plan.read_text("utf-8")
    plan.write_text(
        text.replace('"playbook": "kb842101"', '"playbook": "kb842101", "playbook": "kb842101"', 1),
        "utf-8",
    )

    code, _, err = run(capsys, "--state-dir", str(tmp_path / "state"), "apply", str(plan), "--yes")

    assert code == 1
    one_line_error(err, str(plan), '"playbook" is given twice', "line ")


def test_a_signed_plan_is_applied_only_unaltered_and_with_the_key(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    world_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    monkeypatch.setenv("REMEDIATE_PLAN_KEY", "approver's secret")
    plan = saved_plan(capsys, tmp_path, world_file)
    assert "hmac_sha256" in json.loads(plan.read_text("utf-8"))
    original = plan.read_text("utf-8")

    # altered and resealed: the sha256 holds, the signature does not
    resealed(
        plan,
        lambda data: data.update(options={"allow_protected": True, "replication_timeout_s": None}),
    )
    code, _, err = run(capsys, *state, "apply", str(plan), "--yes")
    assert code == 3
    one_line_error(err, "signature does not hold")

    # unaltered, but no key to check it with
    plan.write_text(original, "utf-8")
    monkeypatch.delenv("REMEDIATE_PLAN_KEY")
    code, _, err = run(capsys, *state, "apply", str(plan), "--yes")
    assert code == 3
    one_line_error(err, "REMEDIATE_PLAN_KEY")

    monkeypatch.setenv("REMEDIATE_PLAN_KEY", "approver's secret")
    assert run(capsys, *state, "apply", str(plan), "--yes")[0] == 0


# -- inventories, prompts, the command line -------------------------------------------------------


def test_an_inventory_with_a_huge_integer_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(f"[safety]\nmax_deletions = {'9' * 5000}\n", "utf-8")

    code, _, err = run(capsys, "plan", "kb842101", "--inventory", str(inventory))

    assert code == 1
    one_line_error(err, str(inventory), "too large")


def test_end_of_input_at_the_password_prompt_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        '[directory]\ndomain = "corp.example"\nbase_dn = "DC=corp,DC=example"\n'
        'bind_user = "CORP\\\\remediate"\npassword_prompt = true\ndcs = ["dc1.corp.example"]\n',
        "utf-8",
    )

    # no terminal (a new session) and nothing on stdin: the prompt reads end of input
    prompted = subprocess.run(
        [
            sys.executable,
            "-m",
            "remediate",
            "-q",
            "plan",
            "kb842101",
            "--inventory",
            str(inventory),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
        timeout=60,
        check=False,
    )

    assert prompted.returncode == 1
    assert "Traceback" not in prompted.stderr
    one_line_error(prompted.stderr, "input ended at a prompt")


def test_a_parameter_that_is_not_utf8_is_refused(
    capsys: pytest.CaptureFixture[str], world_file: Path
) -> None:
    not_utf8 = b"OU=\xff".decode(sys.getfilesystemencoding(), "surrogateescape")

    code, _, err = run(
        capsys, "plan", "kb842101", "--world", str(world_file), "-p", f"ou={not_utf8}"
    )

    assert code == 1
    one_line_error(err, "-p ou", "UTF-8")
