"""What a command-line tool is expected to do: --version from the one place the version is
written, shell completion (commands, playbooks, run ids), a note that a world file is not
written back, and package metadata a packager can use."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib.metadata import metadata
from pathlib import Path

import pytest

import remediate
from remediate.cli.main import main

ROOT = Path(__file__).resolve().parent.parent


def test_version_comes_from_the_one_place_it_is_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"remediate {remediate.__version__}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert metadata("remediate")["Version"] == remediate.__version__


def complete(line: str, tmp_path: Path, state_dir: Path) -> list[str]:
    """What bash completion offers for ``line`` (argcomplete's protocol, as its bash hook
    drives it)."""
    out = tmp_path / "completions"
    env = {
        **os.environ,
        "_ARGCOMPLETE": "1",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
        "REMEDIATE_STATE_DIR": str(state_dir),
    }
    ran = subprocess.run(
        [sys.executable, "-m", "remediate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    return [word.strip() for word in out.read_text(encoding="utf-8").split("\013")]


def test_shell_completion_offers_commands_playbooks_options_and_runs(
    tmp_path: Path, state_dir: Path
) -> None:
    assert complete("remediate pl", tmp_path, state_dir) == ["plan"]
    assert complete("remediate show kb2", tmp_path, state_dir) == ["kb278447"]
    assert set(complete("remediate apply --max-", tmp_path, state_dir)) == {
        "--max-plan-age",
        "--max-deletions",
    }
    run_id = "20261207T151503Z-kb842101-4770dd"
    (state_dir / "runs" / run_id).mkdir(parents=True)
    (state_dir / "runs" / run_id / "journal.jsonl").write_text("", encoding="utf-8")
    assert complete("remediate resume 2026", tmp_path, state_dir) == [run_id]


def test_apply_says_the_world_file_is_not_written_back(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REMEDIATE_STATE_DIR", str(state_dir))
    world = tmp_path / "w.json"
    assert main(["scenario", "kb842101", "--size", "3", "--out", str(world)]) == 0
    before = world.read_bytes()
    capsys.readouterr()
    assert (
        main(["--log-format", "json", "-q", "apply", "kb842101", "--world", str(world), "--yes"])
        == 0
    )
    assert main(["apply", "kb842101", "--world", str(world), "--yes", "--format", "json"]) == 0
    err = capsys.readouterr().err
    assert world.read_bytes() == before
    assert f"the world file {world} is unchanged; the state this run left is in " in err
    assert "--save-world FILE" in err
    saved = tmp_path / "after.json"
    assert (
        main(["apply", "kb842101", "--world", str(world), "--yes", "--save-world", str(saved)]) == 0
    )
    assert "is unchanged" not in capsys.readouterr().err


def test_the_package_says_what_it_is_for_packagers() -> None:
    meta = metadata("remediate")
    classifiers = meta.get_all("Classifier") or []
    assert "Intended Audience :: System Administrators" in classifiers
    assert "Typing :: Typed" in classifiers
    assert meta.get_all("Project-URL")
    assert meta["License-Expression"] == "MIT"
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {remediate.__version__}" in changelog
