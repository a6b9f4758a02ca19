"""Playbooks as plugins: the worked example of docs/PLAYBOOKS.md (docs/example_plugin), installed
by pip from its own folder, is found through the entry point group ``remediate.playbooks`` by
``list``, ``show``, ``plan``, ``apply``, saved plans, ``show-run`` and ``resume``; its name has
an underscore, which run ids accept; a broken plugin is a one-line error, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import remediate.cli.main as cli
from remediate import Engine
from remediate.fakes import FakeWorld, load_world, world_to_json
from remediate.playbooks import PLAYBOOKS, get_playbook
from remediate.testing import assert_idempotent

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "example_plugin"
NAME = "restart_transport"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin as pip installs it (its package and its .dist-info with the entry
    point), into a folder of its own rather than into the test environment."""
    target = tmp_path_factory.mktemp("plugin-site")
    build = tmp_path_factory.mktemp("plugin-source")
    source = build / "example_plugin"
    subprocess.run(["cp", "-r", str(EXAMPLE), str(source)], check=True)  # pip builds in place
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert list(target.glob("remediate_example_playbooks-*.dist-info/entry_points.txt"))
    return target


@pytest.fixture
def with_plugin(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The plugin on sys.path of this process, the registry looking again."""
    monkeypatch.syspath_prepend(str(installed))
    PLAYBOOKS.reload()
    yield
    PLAYBOOKS.reload()


def stopped_world(path: Path, env: dict[str, str]) -> Path:
    """A kb278447 scenario world whose transport services are all stopped."""
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "remediate",
            "scenario",
            "kb278447",
            "--size",
            "3",
            "--out",
            str(path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    data: dict[str, Any] = world_to_json(load_world(path))
    for server in data["exchange"]["servers"]:
        server["services"] = dict.fromkeys(server["services"], "stopped")
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def remediate(
    env: dict[str, str], cwd: Path, *argv: str | Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remediate", *map(str, argv)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_installed_plugin_is_listed_planned_applied_from_a_saved_plan_and_shown(
    installed: Path, tmp_path: Path, state_dir: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed), "REMEDIATE_STATE_DIR": str(state_dir)}
    listed = remediate(env, tmp_path, "list")
    assert f"{NAME}\tStart the Exchange transport services" in listed.stdout, listed.stderr
    shown = remediate(env, tmp_path, "show", NAME)
    assert "1. start-transport [reversible]" in shown.stdout
    world = stopped_world(tmp_path / "world.json", env)
    plan = tmp_path / "plan.json"
    planned = remediate(
        env, tmp_path, "plan", NAME, "--world", world, "--out", plan, "--format", "markdown"
    )
    assert planned.returncode == 2, planned.stderr
    assert "start 2 transport services on EXCH01" in planned.stdout  # the step's own words
    assert "Mail queued for 2 stopped service(s)" in planned.stdout  # its own risk text
    applied = remediate(env, tmp_path, "-q", "apply", plan, "--yes", "--format", "json")
    assert applied.returncode == 0, applied.stderr
    result = json.loads(applied.stdout)
    assert [c["after"] for c in result["changes"]] == ["running"] * 2
    run_id = result["run_id"]
    assert f"-{NAME}-" in run_id  # an underscore in a playbook's name is a valid run id
    timeline = remediate(env, tmp_path, "show-run", run_id)
    assert timeline.returncode == 0, timeline.stderr
    assert "applied the saved plan" in timeline.stdout
    again = remediate(
        env, tmp_path, "plan", NAME, "--world", Path(result["run_dir"]) / "world.json"
    )
    assert again.returncode == 0, again.stderr


def test_without_the_plugin_the_playbook_is_unknown(tmp_path: Path) -> None:
    missing = remediate(dict(os.environ), tmp_path, "show", NAME)
    assert missing.returncode == 1
    assert "no such playbook" in missing.stderr and "remediate.playbooks" in missing.stderr


def test_a_run_of_a_plugin_that_failed_is_resumed(
    with_plugin: None,
    tmp_path: Path,
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REMEDIATE_STATE_DIR", str(state_dir))
    world = stopped_world(tmp_path / "world.json", dict(os.environ))
    failing: list[FakeWorld] = []

    def load_failing_once(path: Path | str) -> FakeWorld:
        loaded = load_world(path)
        if not failing:
            loaded.faults.fail("exchange.set_services", kind="permanent", times=100)
            failing.append(loaded)
        return loaded

    monkeypatch.setattr(cli, "load_world", load_failing_once)
    assert cli.main(["-q", "apply", NAME, "--world", str(world), "--yes", "--format", "json"]) == 1
    failed = json.loads(capsys.readouterr().out)
    assert failed["state"] == "failed" and failed["run_id"]
    assert cli.main(["-q", "resume", failed["run_id"], "--format", "json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["state"] == "done"
    assert {c["target"] for c in resumed["changes"]} == {
        "service:EXCH01/MSExchangeMTA",
        "service:EXCH01/SMTPSVC",
    }


def test_the_example_playbook_is_idempotent(with_plugin: None, tmp_path: Path) -> None:
    world = stopped_world(tmp_path / "world.json", dict(os.environ))
    first = assert_idempotent(
        Engine(state_dir=tmp_path / "state"), get_playbook(NAME), load_world(world), {}
    )
    assert len(first.changes) == 2


def test_a_broken_plugin_is_one_line_naming_its_entry_point(
    tmp_path: Path, state_dir: Path
) -> None:
    site = tmp_path / "site"
    info = site / "broken_playbooks-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-playbooks\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[remediate.playbooks]\nkb_broken = no_such_module:Playbook\n", encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "REMEDIATE_STATE_DIR": str(state_dir)}
    listed = remediate(env, tmp_path, "list")
    assert listed.returncode == 1
    assert "Traceback" not in listed.stderr
    (line,) = listed.stderr.strip().splitlines()
    assert "kb_broken = no_such_module:Playbook" in line and "uninstall" in line
