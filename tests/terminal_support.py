"""The command line as a separate process: its environment, a scenario world file made by
``remediate scenario``, and a pseudo-terminal to run it at (pexpect)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pexpect

TIMEOUT = 120


def cli_environment(state_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment with the CLI's state directory set to ``state_dir``."""
    environment = dict(os.environ)
    environment.update(REMEDIATE_STATE_DIR=str(state_dir), **extra)
    return environment


def scenario_world(
    path: Path, env: dict[str, str], kb: str = "kb842101", *, size: int, seed: int
) -> Path:
    """A broken world file written by ``python -m remediate scenario``."""
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "remediate",
            "scenario",
            kb,
            "--size",
            str(size),
            "--seed",
            str(seed),
            "--out",
            str(path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    return path


def spawn_cli(
    env: dict[str, str], cwd: Path, *argv: str | Path, dimensions: tuple[int, int]
) -> pexpect.spawn[str]:
    """``python -m remediate ARGV`` at a terminal of ``dimensions`` (rows, columns)."""
    return pexpect.spawn(
        sys.executable,
        ["-m", "remediate", *map(str, argv)],
        env=env,
        cwd=str(cwd),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=dimensions,
    )
