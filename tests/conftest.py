"""Fixtures shared by the test modules. Keep this small and generic."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediate import Engine


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A fresh state directory (runs, locks) for one test."""
    return tmp_path / "state"


@pytest.fixture
def engine(state_dir: Path) -> Engine:
    """An engine keeping its runs in ``state_dir``."""
    return Engine(state_dir=state_dir)
