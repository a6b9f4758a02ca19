"""``remediate scenario --servers N`` and ``--case``: the worlds of several Exchange servers and
kb278447's evidence cases that the library's scenario builder makes, from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from remediate.cli.main import main
from remediate.cli.scenario_options import EVIDENCE_CASES
from remediate.fakes.scenarios import KB278447_CASES, KB278447_WINDOW, kb278447


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def written(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_servers_spreads_the_users_over_that_many_exchange_servers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "w.json"
    code, _, err = run(
        capsys,
        "scenario",
        "kb842101",
        "--size",
        "6",
        "--servers",
        "3",
        "--version",
        "2016",
        "--out",
        out,
    )

    assert code == 0, err
    servers = written(out)["exchange"]["servers"]
    assert [server["name"] for server in servers] == ["EXCH01", "EXCH02", "EXCH03"]
    assert all(store["mailboxes"] for server in servers for store in server["stores"])


def test_cases_by_their_operators_names_give_the_builders_world(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "w.json"
    code, _, err = run(
        capsys,
        "scenario",
        "kb278447",
        "--size",
        "3",
        "--seed",
        "4",
        "--servers",
        "2",
        "--case",
        "stripped-by-hand",
        "--case",
        "blank-bigger",
        "--out",
        out,
    )

    assert code == 0, err
    expected = kb278447(3, 4, servers=2, cases=("half-done", "big-blank"))["scenario"]
    assert written(out)["scenario"] == expected


def test_case_all_adds_every_case_and_the_world_plans_with_the_window(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "w.json"
    code, _, err = run(
        capsys,
        "scenario",
        "kb278447",
        "--size",
        "2",
        "--case",
        "all",
        "--version",
        "2016",
        "--out",
        out,
    )
    assert code == 0, err
    assert set(written(out)["scenario"]["expected"]["cases"]) == set(KB278447_CASES)

    window = [arg for key, value in KB278447_WINDOW.items() for arg in ("-p", f"{key}={value}")]
    code, _, err = run(
        capsys,
        "--state-dir",
        tmp_path / "state",
        "plan",
        "kb278447",
        "--world",
        out,
        *window,
        "--format",
        "json",
    )
    assert code == 2, err  # changes pending


def test_every_case_is_explained_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, shown, _ = run(capsys, "scenario", "--help")
    assert code == 0
    for name in EVIDENCE_CASES:
        assert f"  {name} " in shown
    assert {builder for builder, _ in EVIDENCE_CASES.values()} == set(KB278447_CASES)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["kb842101", "--case", "blank-empty"], "error: --case: kb842101 has no evidence cases"),
        (["kb278447", "--servers", "100"], "servers must be an integer from 1 to 99, got 100"),
        (["kb278447", "--servers", "0"], "servers must be an integer from 1 to 99, got 0"),
    ],
)
def test_bad_servers_or_cases_are_one_line_errors_and_write_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], expected: str
) -> None:
    out = tmp_path / "w.json"
    code, _, err = run(capsys, "scenario", *argv, "--out", out)

    assert code == 1
    assert expected in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_the_readme_explains_every_case_as_the_help_does() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for name, (_, text) in EVIDENCE_CASES.items():
        assert f"| `{name}` | {text} |" in readme
