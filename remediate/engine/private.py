"""A run directory holds what a run deleted (LDIF backups), users' mail (exports) and who did
what (journal, plan): its files are 0600 and its directories 0700, whatever the umask, as the
saved worlds and exports already were. Temporary files a killed process left behind are
removed by the next process that holds the run (``remove_temporary``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


def private_directory(path: Path, *, exist_ok: bool = True) -> Path:
    """``path`` and every missing parent made 0700 (``Path.mkdir(parents=True)`` would make
    the parents with the umask's mode)."""
    for parent in reversed(path.parents):
        if not parent.exists():
            parent.mkdir(mode=DIRECTORY_MODE, exist_ok=True)
    path.mkdir(mode=DIRECTORY_MODE, exist_ok=exist_ok)
    return path


def open_private(path: Path, mode: str) -> IO[str]:
    """A text file opened for writing (``w``) or appending (``a``), made 0600 if new."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    return os.fdopen(fd, mode, encoding="utf-8", newline="\n")


def remove_temporary(run_dir: Path) -> list[Path]:
    """Delete the ``*.tmp`` files under a run directory (atomic writes a killed process never
    renamed into place); only call it holding the run's lock."""
    removed = [path for path in run_dir.rglob("*.tmp") if path.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
