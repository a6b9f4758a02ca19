"""Out of disk, or an output that cannot be written: refused before the first change where it
can be known (an unwritable --save-world, too little space for the run's journal and
backups); otherwise the run stops with a result naming the run, what it changed, what it left
stopped and how to resume, and the world it left is saved to the first place that takes it."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from run_support import Case, load

from remediate.cli import durability
from remediate.cli import main as cli
from remediate.engine import backups
from remediate.fakes import FakeWorld, load_world, save_world

CASE = Case("kb278447", "2016")


pytestmark = pytest.mark.usefixtures("quiet")


@pytest.fixture
def world_file(tmp_path: Path) -> Path:
    path = tmp_path / "broken.json"
    save_world(load(CASE.document()), path)
    return path


def apply(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, world_file: Path, *extra: str
) -> tuple[int, str, str]:
    code = cli.main(
        [
            "-q",
            "--state-dir",
            str(tmp_path / "state"),
            "apply",
            CASE.playbook,
            "--world",
            str(world_file),
            "--yes",
            "--format",
            "json",
            *extra,
        ]
    )
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_an_unwritable_save_world_is_refused_before_anything(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, world_file: Path
) -> None:
    code, _, err = apply(
        capsys, tmp_path, world_file, "--save-world", str(tmp_path / "no-such-folder" / "end.json")
    )

    assert code == 1
    assert "--save-world" in err and "cannot be written" in err
    assert not (tmp_path / "state" / "runs").exists()


def test_too_little_space_for_the_journal_and_backups_is_refused_before_the_first_change(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    world_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(
        "remediate.engine.runner.shutil.disk_usage", lambda path: usage._replace(free=1024 * 1024)
    )

    code, out, _ = apply(capsys, tmp_path, world_file)

    result = json.loads(out)
    assert code == 3 and result["state"] == "refused"
    assert "MiB free" in result["error"] and "nothing was changed" in result["error"]
    assert result["changes"] == []


def test_a_disk_that_fills_mid_run_stops_it_naming_run_state_and_resume_and_saves_the_world(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    world_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full(path: Path, text: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    real_save = save_world

    def save(world: FakeWorld, path: Path | str) -> None:
        if Path(path).name == "world.json":  # the run directory's copy: the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_save(world, path)

    monkeypatch.setattr(backups, "write_durably", full)  # the LDIF backup before the strip
    monkeypatch.setattr(durability, "save_world", save)
    elsewhere = tmp_path / "end.json"

    code, out, err = apply(capsys, tmp_path, world_file, "--save-world", str(elsewhere))

    result = json.loads(out)
    assert code == 1 and result["state"] == "failed"
    assert "No space left on device" in result["error"]
    run_id = result["run_id"]
    assert f"remediate resume {run_id}" in err
    assert "left stopped until the run is resumed: EXCH01 service " in err
    assert f"was saved to {elsewhere} instead" in err
    left = load_world(elsewhere)
    assert left.exchange.service_states("EXCH01", ["MSExchangeTransport"])
