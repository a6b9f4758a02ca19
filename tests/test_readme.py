"""What a new user meets first: README.md's Python examples run as they are written, and the
library prints nothing of its own accord."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
FENCED_PYTHON = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks(path: Path) -> list[str]:
    return FENCED_PYTHON.findall(path.read_text(encoding="utf-8"))


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter (nothing configured by pytest or an earlier test)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_readme_has_python_examples() -> None:
    assert python_blocks(README)


@pytest.mark.parametrize("number", range(len(python_blocks(README))))
def test_every_python_example_of_the_readme_runs_verbatim(number: int, tmp_path: Path) -> None:
    ran = run_python(python_blocks(README)[number], tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr == ""


LIBRARY_RUN = """
from remediate import Engine, Safety, get_playbook
from remediate.fakes.scenarios import scenario_world
world = scenario_world("kb278447", size=3, seed=2)
engine = Engine(state_dir="state")
result = engine.apply(get_playbook("kb278447"), world, {}, safety=Safety(confirm=lambda t: True))
assert result.state == "done" and result.changes, result.error
"""


def test_the_library_prints_nothing_unless_asked(tmp_path: Path) -> None:
    ran = run_python(LIBRARY_RUN, tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert (ran.stdout, ran.stderr) == ("", "")
    assert list((tmp_path / "state" / "runs").iterdir())  # a str state_dir is a directory


def test_the_library_logs_its_events_once_the_program_configures_logging(
    tmp_path: Path,
) -> None:
    asked = "import logging\nlogging.basicConfig(level=logging.INFO)\n" + LIBRARY_RUN
    ran = run_python(asked, tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "INFO:remediate:step.completed" in ran.stderr
    assert "step.applied" not in ran.stderr  # per-target events are DEBUG
